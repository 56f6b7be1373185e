"""Augmented support views: the interleaved row layout, the best-of-views episode and gallery scores against float64
loops, the metrics they change (and those they leave alone), and the task's per-image view inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.tasks.test_embedding_task import _task
from vision_jax.errors import ConfigError
from vision_jax.evaluation import embedding as E
from vision_jax.evaluation import episode_rules, local_matching, support_views


def test_interleave_puts_view_v_of_image_i_at_row_i_times_v_plus_v():
  plain = np.arange(3)[:, None] * 10.0 + np.zeros((3, 2))
  views = plain[:, None, :] + np.arange(1, 4)[None, :, None]  # [3, 3, 2]: image i, view v -> 10 i + v
  joined = support_views.interleave(plain, views)
  np.testing.assert_array_equal(joined[:, 0], [10 * i + v for i in range(3) for v in range(4)])
  with pytest.raises(ValueError, match="expected"):
    support_views.interleave(plain, views[:2])


def _cosine(a, b):
  return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("shots", [1, 2])
def test_best_view_class_scores_match_a_float64_loop(shots):
  rng = np.random.default_rng(shots)
  images, views, dim = 30, 3, 5
  plain, extra = rng.normal(size=(images, dim)), rng.normal(size=(images, views - 1, dim))
  joined = support_views.interleave(plain, extra)
  all_views = np.concatenate([plain[:, None], extra], 1)
  base = lambda q, s: E.prototype_class_scores(joined, q, s, "cosine")
  queries = rng.integers(0, images, (4, 6))
  supports = rng.integers(0, images, (4, 3, shots))
  ours = support_views.best_view_class_scores(base, views)(queries, supports)
  for e in range(4):
    for j in range(6):
      for w in range(3):
        expected = max(_cosine(plain[queries[e, j]], all_views[supports[e, w], v].mean(0)) - 1.0
                       for v in range(views))  # prototype of view v: the mean of the shots in view v
        assert ours[e, j, w] == pytest.approx(expected, abs=1e-12)
  plain_only = lambda q, s: E.prototype_class_scores(plain, q, s, "cosine")
  np.testing.assert_allclose(support_views.best_view_class_scores(plain_only, 1)(queries, supports),
                             plain_only(queries, supports))


def test_best_view_pair_scores_match_a_float64_loop():
  rng = np.random.default_rng(3)
  plain, extra = rng.normal(size=(8, 4)), rng.normal(size=(8, 2, 4))
  joined = support_views.interleave(plain, extra)
  pair = support_views.best_view_pair_scores(lambda a, b: E.score_matrix(joined[a], joined[b], "euclidean"), 3)
  probes, gallery = np.array([0, 5, 7]), np.array([1, 2, 6, 7])
  ours = pair(probes, gallery)
  for i, p in enumerate(probes):
    for j, g in enumerate(gallery):
      views = [plain[g]] + list(extra[g])
      assert ours[i, j] == pytest.approx(max(-np.linalg.norm(plain[p] - v) for v in views), abs=1e-12)


def _rows(rng, noise):
  """Five classes of noisy embeddings around random centres; view 1 of every image is its class centre."""
  labels = np.repeat(np.arange(5), 12)
  centres = rng.normal(size=(5, 16))
  plain = centres[labels] + noise * rng.normal(size=(60, 16))
  return {"embedding": plain, "label": labels, "view_embedding": centres[labels][:, None]}


def test_support_views_change_episodes_and_gallery_only():
  rows = _rows(np.random.default_rng(0), noise=1.6)
  settings = dict(metric="cosine", episodes=((5, 1),), num_episodes=200, queries=3, gallery_draws=3)
  plain = E.embedding_metrics(rows, E.EmbeddingEval(**settings))
  viewed = E.embedding_metrics(rows, E.EmbeddingEval(support_views=2, **settings))
  assert viewed["episodes_5way_1shot"] > plain["episodes_5way_1shot"] + 0.2  # clean views of the supports win
  assert viewed["gallery_top1_enrol1"] > plain["gallery_top1_enrol1"] + 0.1
  assert viewed["verification_auc"] == plain["verification_auc"]  # verification scores the plain images
  copies = dict(rows, view_embedding=rows["embedding"][:, None].repeat(3, 1))  # views equal to the image itself
  same = E.embedding_metrics(copies, E.EmbeddingEval(support_views=4, **settings))
  assert same["episodes_5way_1shot"] == plain["episodes_5way_1shot"]
  assert same["gallery_top1_enrol1"] == plain["gallery_top1_enrol1"]


def test_support_views_errors_name_the_fix():
  rows = _rows(np.random.default_rng(1), noise=1.0)
  with pytest.raises(ConfigError, match="support_views=0 counts the plain view"):
    E.EmbeddingEval(support_views=0)
  del rows["view_embedding"]
  with pytest.raises(ConfigError, match="needs the augmented views") as error:
    episode_rules.inductive_rules(rows, np.ones(60, bool), rows["embedding"], None, None,
                                  E.EmbeddingEval(support_views=2))
  assert "\n" not in str(error.value)


def test_task_views_are_drawn_per_image_whatever_the_batch():
  task = _task("batch_all", "balanced", "views=3,")
  assert task.eval_settings.support_views == 3
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (6, 28, 28, 1)), jnp.uint8)
  order = np.array([3, 0, 5, 1, 4, 2])
  view = np.asarray(task.view_inputs(images, 1))
  np.testing.assert_array_equal(np.asarray(task.view_inputs(images[order], 1)), view[order])
  np.testing.assert_array_equal(np.asarray(task.view_inputs(images[:2], 1)), view[:2])
  plain = np.asarray(task.input_ops(jax.random.PRNGKey(0), images, train=False))
  assert not np.allclose(view, plain) and not np.allclose(view, np.asarray(task.view_inputs(images, 2)))


def _best_local(query, maps, radius):
  """Float64 loop: the mean over the query's locations of the best cosine within +-radius over the maps [P, h, w, C]
  (a zero descriptor scores 0)."""
  def unit(v):
    n = np.linalg.norm(v)
    return v / n if n > 0 else v
  h, w = query.shape[:2]
  total = 0.0
  for i in range(h):
    for j in range(w):
      total += max(float(np.dot(unit(query[i, j]), unit(m[y, x]))) for m in maps
                   for y in range(max(0, i - radius), min(h, i + radius + 1))
                   for x in range(max(0, j - radius), min(w, j + radius + 1)))
  return total / (h * w)


@pytest.mark.parametrize("radius,shots", [(0, 1), (1, 2)])
def test_local_rule_pools_every_view_of_every_shot_per_location(radius, shots):
  rng = np.random.default_rng(radius)
  images, views = 12, 3
  maps = np.maximum(rng.normal(size=(images, 3, 3, 4)), 0.0)  # ReLU-like maps, some zero descriptors
  view_maps = np.maximum(rng.normal(size=(images, views - 1, 3, 3, 4)), 0.0)
  rows = {"embedding": rng.normal(size=(images, 5)), "label": np.arange(images) % 3, "maps": maps,
          "view_maps": view_maps, "view_embedding": rng.normal(size=(images, views - 1, 5))}
  settings = E.EmbeddingEval(match="local", radius=radius, support_views=views)
  class_scores, pair_scores = episode_rules.inductive_rules(rows, np.ones(images, bool), rows["embedding"], maps,
                                                            None, settings)
  queries, supports = rng.integers(0, images, (2, 3)), rng.integers(0, images, (2, 2, shots))
  ours = class_scores(queries, supports)
  every_view = np.concatenate([maps[:, None], view_maps], 1)
  for e in range(2):
    for j in range(3):
      for w in range(2):
        pooled = every_view[supports[e, w]].reshape((-1, 3, 3, 4))
        assert ours[e, j, w] == pytest.approx(_best_local(maps[queries[e, j]], pooled, radius), abs=1e-5)
  probes, gallery = np.array([0, 4]), np.array([1, 2, 7])
  gallery_scores = pair_scores(probes, gallery)
  for i, p in enumerate(probes):
    for k, g in enumerate(gallery):
      assert gallery_scores[i, k] == pytest.approx(_best_local(maps[p], every_view[g], radius), abs=1e-5)
  single = local_matching.local_score_matrix(maps[:4], maps[4:9], radius)  # one map per column
  np.testing.assert_allclose(single, [[_best_local(maps[i], maps[j:j + 1], radius) for j in range(4, 9)]
                                      for i in range(4)], atol=1e-5)


def test_support_views_picture_is_written(tmp_path):
  task = _task("batch_all", "balanced", "views=3,")
  thumbs = np.random.default_rng(0).integers(0, 256, (12, 28, 28, 1)).astype(np.uint8)
  metrics = {"picture_thumbs": thumbs, "pca_labels": np.arange(12) % 4, "pca_points": np.zeros((12, 2))}
  paths = task.write_reports(str(tmp_path), metrics, {})
  assert [p.rsplit("/", 1)[1] for p in paths] == ["embedding_pca.png", "support_views.png"]
  from PIL import Image
  width, height = Image.open(paths[1]).size
  assert (width, height) == (3 * 130, 4 * 130 + 50)  # 4 classes (rows) x the image and its 2 views, 1.3 in at 100 dpi
