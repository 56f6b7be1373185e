"""The embedding evaluator's matching options: shared episode draws, local matching of maps, joined feature blocks
and the separately named transductive metrics."""

import numpy as np
import pytest

from vision_jax.evaluation import embedding as embedding_eval


def _bars(count, vertical, rng):
  """[count, 7, 7, 2] (stroke, background) maps of a 4-cell bar, vertical or horizontal, moved by 0 or 1 cell down
  and right (so two bars of one orientation differ by at most one cell in each direction)."""
  maps = np.zeros((count, 7, 7, 2), np.float32)
  for m in maps:
    dy, dx = rng.integers(0, 2, 2)
    if vertical:
      m[2 + dy:6 + dy, 3 + dx, 0] = 1.0
    else:
      m[3 + dy, 2 + dx:6 + dx, 0] = 1.0
  maps[..., 1] = 1.0 - maps[..., 0]
  return maps


@pytest.fixture(scope="module")
def bar_rows():
  rng = np.random.default_rng(0)
  maps = np.concatenate([_bars(8, True, rng), _bars(8, False, rng)])
  return {"embedding": maps.reshape(16, -1), "label": np.repeat([0, 1], 8), "maps": maps}


def test_draw_episodes_gives_disjoint_same_class_rows():
  labels = np.repeat(np.arange(4), 6)
  queries, supports = embedding_eval.draw_episodes(labels, ways=3, shots=2, queries=3, episodes=5, seed=1)
  assert queries.shape == (5, 9) and supports.shape == (5, 3, 2)
  for q, s in zip(queries, supports):
    assert len(set(q) | set(s.ravel())) == 15  # no row twice
    assert all(len(set(labels[s[c]]) | set(labels[q[3 * c:3 * c + 3]])) == 1 for c in range(3))


def test_class_scores_see_the_same_episodes_as_the_prototype_rule():
  rng = np.random.default_rng(2)
  embeddings, labels = rng.normal(size=(30, 4)), np.repeat(np.arange(5), 6)

  def nearest_mean(query_rows, support_rows):  # the prototype rule written out with NumPy
    prototypes = embeddings[support_rows].mean(2)
    return -np.linalg.norm(embeddings[query_rows][:, :, None] - prototypes[:, None], axis=-1)
  plain = embedding_eval.episode_accuracies(embeddings, labels, 3, 2, 2, episodes=40, seed=3)
  custom = embedding_eval.episode_accuracies(embeddings, labels, 3, 2, 2, episodes=40, seed=3,
                                             class_scores=nearest_mean)
  np.testing.assert_array_equal(plain, custom)
  assert 0 < plain.mean() < 1


def test_local_matching_recognises_shifted_bars(bar_rows):
  settings = dict(metric="cosine", episodes=((2, 1),), queries=3, num_episodes=30, gallery_draws=3, hardest=2)
  local = embedding_eval.embedding_metrics(bar_rows, embedding_eval.EmbeddingEval(match="local", radius=1, **settings))
  plain = embedding_eval.embedding_metrics(bar_rows, embedding_eval.EmbeddingEval(**settings))
  # Within one cell every cell of a bar finds its partner in any bar of its orientation (score 1), while an end
  # cell of a vertical bar lies two or more rows from any horizontal bar's stroke (score < 1), and vice versa.
  assert local["episodes_2way_1shot"] == 1.0 and local["gallery_top1_enrol1"] == 1.0
  assert plain["episodes_2way_1shot"] < 1.0 and plain["gallery_top1_enrol1"] < 1.0
  assert local["verification_auc"] == plain["verification_auc"]  # verification scores the embeddings


def test_join_feature_blocks_averages_the_blocks_cosines():
  rng = np.random.default_rng(4)
  a, b = rng.normal(size=(3, 5)), rng.normal(size=(3, 8))
  joined = np.asarray(embedding_eval.join_feature_blocks([a.astype(np.float32), b.astype(np.float32)]))

  def cos(x, y):
    return x @ y / (np.linalg.norm(x) * np.linalg.norm(y))
  for i in range(3):
    for j in range(3):
      assert cos(joined[i], joined[j]) == pytest.approx((cos(a[i], a[j]) + cos(b[i], b[j])) / 2, abs=1e-6)


def test_transductive_metrics_are_named_apart(bar_rows):
  settings = embedding_eval.EmbeddingEval(metric="cosine", episodes=((2, 1),), queries=3, num_episodes=10,
                                          refine_steps=2, gallery_draws=1, hardest=1)
  out = embedding_eval.embedding_metrics(bar_rows, settings)
  names = embedding_eval.metric_names(settings)
  assert "episodes_2way_1shot_transductive" in names and "episodes_2way_1shot_transductive_ci95" in names
  assert 0.0 <= out["episodes_2way_1shot_transductive"] <= 1.0
  assert "episodes_2way_1shot" in out  # the inductive result is still reported under its own name
