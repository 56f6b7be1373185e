"""The data behind the metric-learning pictures: the verification ROC curve against a brute-force float64 search
over every threshold and a hand-worked example, episode confusion counts and shown episodes on hand-built episodes."""

import numpy as np

from vision_jax.evaluation import embedding as E
from vision_jax.evaluation import embedding_pictures as P


def _best_tar_brute_force(scores, positive, far):
  """The highest TAR of any threshold t (accept score > t) whose FAR is at most `far`."""
  best = 0.0
  for t in np.r_[-np.inf, np.unique(scores)]:
    accepted = scores > t
    if np.mean(accepted[~positive]) <= far + 1e-12:
      best = max(best, np.mean(accepted[positive]))
  return best


def test_roc_curve_hand_worked():
  # positives 0.9, 0.8, 0.3; negatives 0.85, 0.5, 0.2, 0.1
  scores = np.array([0.9, 0.8, 0.3, 0.85, 0.5, 0.2, 0.1])
  positive = np.array([True, True, True, False, False, False, False])
  got = P.roc_curve(scores, positive, np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
  np.testing.assert_allclose(got, [1 / 3, 2 / 3, 1.0, 1.0, 1.0])


def test_roc_curve_is_the_best_tar_at_each_far_with_ties():
  rng = np.random.default_rng(0)
  scores = np.round(np.r_[rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, 700)], 1)  # rounding makes ties
  positive = np.r_[np.ones(300, bool), np.zeros(700, bool)]
  fars = P.far_grid(700, 40)
  assert np.isclose(fars[0], 1 / 700) and fars[-1] == 1.0 and np.all(np.diff(fars) > 0)
  got = P.roc_curve(scores, positive, fars)
  np.testing.assert_allclose(got, [_best_tar_brute_force(scores, positive, f) for f in fars], rtol=0, atol=1e-12)
  assert np.all(np.diff(got) >= 0)
  assert P.roc_curve(scores, positive, np.array([1e-3]))[0] == E.tar_at_far(scores, positive, 1e-3)
  assert np.isnan(P.roc_curve(scores[:300], positive[:300], fars)).all()


def test_episode_confusion_and_shown_episodes():
  labels = np.array([0, 0, 1, 1, 2, 2, 1])
  # two 2-way episodes, 2 queries per class: episode 0 classes (0, 1), episode 1 classes (2, 1)
  support_rows = np.array([[[0], [2]], [[4], [3]]])
  query_rows = np.array([[1, 1, 3, 6], [5, 5, 6, 2]])
  predicted = np.array([[0, 1, 1, 1], [0, 1, 0, 1]])  # class index within the episode
  confusion = P.episode_confusion(labels, query_rows, support_rows, predicted, np.array([0, 1, 2]))
  np.testing.assert_array_equal(confusion, [[1, 1, 0], [0, 3, 1], [0, 1, 1]])
  shown = P.episode_examples(labels, query_rows, support_rows, predicted, queries=2, count=5)
  np.testing.assert_array_equal(shown["episode_support_rows"], [[0, 2], [4, 3]])
  np.testing.assert_array_equal(shown["episode_query_rows"], [[1, 3], [5, 6]])
  np.testing.assert_array_equal(shown["episode_query_given"], [[0, 1], [2, 2]])


def test_embedding_metrics_carry_the_pictures_data():
  rng = np.random.default_rng(1)
  labels = np.repeat(np.arange(4), 12)
  embeddings = np.eye(4)[labels] * 2.0 + rng.normal(0, 0.8, (48, 4))
  thumbs = rng.integers(0, 255, (48, 6, 6, 1), np.uint8)
  settings = E.EmbeddingEval(episodes=((4, 1), (2, 5)), num_episodes=50)
  out = E.embedding_metrics({"embedding": embeddings, "label": labels, "thumb": thumbs}, settings)
  assert out["roc_far"].shape == out["roc_tar"].shape == (200,)
  assert out["episode_confusion"].sum() == 50 * 4 * settings.queries
  accuracy = np.trace(out["episode_confusion"]) / out["episode_confusion"].sum()
  assert np.isclose(accuracy, out["episodes_4way_1shot"]) and tuple(out["episode_setting"]) == (4, 1)
  np.testing.assert_array_equal(out["episode_support_thumbs"], thumbs[out["episode_support_rows"]])
  np.testing.assert_array_equal(out["episode_query_labels"], labels[out["episode_query_rows"]])
  assert out["episode_support_thumbs"].shape == (3, 4, 6, 6, 1)


def test_no_confusion_matrix_beyond_thirty_classes():
  rng = np.random.default_rng(2)
  labels = np.repeat(np.arange(E.CONFUSION_CLASSES + 1), 3)
  out = E.embedding_metrics({"embedding": rng.normal(size=(len(labels), 8)), "label": labels},
                            E.EmbeddingEval(episodes=((5, 1),), queries=2, num_episodes=10))
  assert "episode_confusion" not in out and tuple(out["episode_setting"]) == (5, 1)
  assert out["episode_query_given"].shape == (3, 5)
