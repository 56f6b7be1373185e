"""Metric-learning evaluation: ROC AUC, TAR at FAR and the validated threshold against scikit-learn fixtures and
brute-force float64 NumPy; episodes, gallery recognition, PCA and hardest pairs on hand-made embeddings."""

import os

import numpy as np
import pytest

from vision_jax.errors import ConfigError
from vision_jax.evaluation import embedding as E
from vision_jax.evaluation.evaluators import GatherEvaluator

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "metric", "verification.npz")


@pytest.fixture(scope="module")
def sklearn_roc():
  with np.load(FIXTURE, allow_pickle=False) as data:
    return {k: data[k] for k in data.files}


def _brute_force_auc(scores, positive):
  pos, neg = scores[positive], scores[~positive]
  greater = (pos[:, None] > neg[None, :]).sum()
  ties = (pos[:, None] == neg[None, :]).sum()
  return (greater + 0.5 * ties) / (len(pos) * len(neg))


def _brute_force_tar(scores, positive, far):
  best = 0.0
  for t in np.r_[np.unique(scores), np.inf]:  # accept score >= t
    accepted = scores >= t
    if accepted[~positive].mean() <= far:
      best = max(best, accepted[positive].mean())
  return best


def test_roc_auc_matches_sklearn_with_ties(sklearn_roc):
  ours = E.roc_auc(sklearn_roc["scores"], sklearn_roc["positive"])
  assert abs(ours - float(sklearn_roc["auc"])) < 1e-12


def test_roc_auc_matches_pair_counting():
  rng = np.random.default_rng(0)
  scores = rng.integers(0, 6, 300).astype(float)  # heavy ties
  positive = rng.random(300) < 0.3
  assert abs(E.roc_auc(scores, positive) - _brute_force_auc(scores, positive)) < 1e-12
  assert np.isnan(E.roc_auc(scores, np.zeros(300, bool)))


@pytest.mark.parametrize("far", [1e-3, 1e-2, 0.1])
def test_tar_at_far_matches_the_sklearn_roc_curve(sklearn_roc, far):
  fpr, tpr = sklearn_roc["fpr"], sklearn_roc["tpr"]
  expected = tpr[fpr <= far + 1e-12].max()
  assert abs(E.tar_at_far(sklearn_roc["scores"], sklearn_roc["positive"], far) - expected) < 1e-12


def test_tar_at_far_matches_threshold_enumeration():
  rng = np.random.default_rng(1)
  positive = rng.random(2000) < 0.5
  scores = np.round(rng.normal(size=2000) + 2.0 * positive, 1)
  for far in (0.0, 1e-3, 0.05):
    assert abs(E.tar_at_far(scores, positive, far) - _brute_force_tar(scores, positive, far)) < 1e-12


def test_best_threshold_reaches_the_best_accuracy_of_any_threshold():
  rng = np.random.default_rng(2)
  positive = rng.random(400) < 0.4
  scores = np.round(rng.normal(size=400) + positive, 1)
  best = max(np.mean((scores >= t) == positive) for t in np.r_[np.unique(scores), np.inf])
  threshold, accuracy = E.best_threshold(scores, positive)
  assert abs(accuracy - best) < 1e-12
  assert abs(np.mean((scores >= threshold) == positive) - best) < 1e-12
  assert threshold not in set(scores)  # a midpoint between two scores


def test_best_threshold_hand_example():
  # scores 3, 2, 1, 0 with labels T, F, T, F: accept >= 3 -> 3/4 correct, >= 1 -> 3/4, >= 2 -> 2/4.
  threshold, accuracy = E.best_threshold(np.array([3.0, 2.0, 1.0, 0.0]), np.array([True, False, True, False]))
  assert accuracy == 0.75 and threshold == 2.5  # ties keep the strictest threshold


def test_scores_against_explicit_loops():
  rng = np.random.default_rng(3)
  a, b, w = rng.normal(size=(5, 4)), rng.normal(size=(3, 4)), rng.normal(size=4)
  for metric, fn in {"euclidean": lambda x, y: -np.sqrt(np.sum((x - y) ** 2)),
                     "squared_euclidean": lambda x, y: -np.sum((x - y) ** 2),
                     "cosine": lambda x, y: -(1 - x @ y / np.linalg.norm(x) / np.linalg.norm(y)),
                     "weighted_l1": lambda x, y: np.abs(x - y) @ w}.items():
    expected = np.array([[fn(x, y) for y in b] for x in a])
    weights = w if metric == "weighted_l1" else None
    np.testing.assert_allclose(E.score_matrix(a, b, metric, weights), expected, atol=1e-12)
    both = np.concatenate([a, b])
    first, second = np.array([0, 1, 4]), np.array([5, 6, 7])
    np.testing.assert_allclose(E.paired_scores(both, first, second, metric, weights),
                               expected[[0, 1, 4], [0, 1, 2]], atol=1e-12)
  with pytest.raises(ConfigError):
    E.score_matrix(a, b, "manhattan")


def test_verification_of_separated_classes_is_perfect():
  labels = np.repeat(np.arange(4), 10)
  embeddings = np.eye(4)[labels] * 10 + np.random.default_rng(4).normal(scale=0.1, size=(40, 4))
  metrics = E.verification_metrics(embeddings, labels)
  assert metrics["verification_auc"] == 1.0 and metrics["verification_accuracy"] == 1.0
  assert metrics["tar_at_far_1e-3"] == 1.0


def test_mean_and_interval_hand_example():
  mean, half_width = E.mean_and_interval(np.array([0.0, 1.0, 1.0, 1.0]))
  assert mean == 0.75 and abs(half_width - 1.96 * 0.5 / 2) < 1e-12  # std (ddof 1) 0.5, sqrt(4) = 2


def test_episodes_on_separated_classes_are_all_correct():
  labels = np.repeat(np.arange(6), 8)
  embeddings = np.eye(6)[labels] + np.random.default_rng(5).normal(scale=0.05, size=(48, 6))
  accuracies = E.episode_accuracies(embeddings, labels, ways=5, shots=1, queries=3, episodes=50)
  assert accuracies.shape == (50,) and np.all(accuracies == 1.0)
  assert E.episode_accuracies(embeddings, labels, ways=20, shots=1, queries=3) is None  # only 6 classes


def test_episode_accuracy_has_the_hand_computed_expectation():
  # 2-way 1-shot, 1 query: class 0 at x=0 (always right); class 1 has three points at 0.9 and three at 10.
  # Class 1's query is wrong only when its support is at 10 and its query at 0.9 (nearer to 0 than to 10):
  # P = 1/2 * 3/5 = 0.3, so the expected episode accuracy is (1 + 0.7) / 2 = 0.85.
  x = np.array([0.0] * 6 + [0.9] * 3 + [10.0] * 3)[:, None]
  labels = np.array([0] * 6 + [1] * 6)
  accuracies = E.episode_accuracies(x, labels, ways=2, shots=1, queries=1, episodes=4000, seed=7)
  mean, half_width = E.mean_and_interval(accuracies)
  assert set(np.unique(accuracies)) <= {0.5, 1.0}
  assert abs(mean - 0.85) < 2 * half_width and 0.005 < half_width < 0.01


def test_gallery_recognition_hand_example():
  # Class 0 at 0 (two examples), class 1 at 0.4 and 3. Enrolling 3 for class 1 sends its probe 0.4 to class 0;
  # enrolling 0.4 keeps its probe 3 right (2.6 < 3). Expected accuracy (1 + 1/2) / 2 = 0.75 over draws.
  x = np.array([0.0, 0.0, 0.4, 3.0])[:, None]
  accuracy = E.gallery_accuracy(x, np.array([0, 0, 1, 1]), enrol=1, draws=400, seed=3)
  assert abs(accuracy - 0.75) < 0.05
  separated = E.gallery_accuracy(np.array([0.0, 0.1, 5.0, 5.1, 9.0, 9.2])[:, None], np.repeat([0, 1, 2], 2))
  assert separated == 1.0


def test_pca_matches_the_covariance_eigenvectors():
  rng = np.random.default_rng(8)
  x = rng.normal(size=(200, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
  values, vectors = np.linalg.eigh(np.cov(x.T))
  top = vectors[:, ::-1][:, :2]
  expected = (x - x.mean(0)) @ top
  ours = E.pca_2d(x)
  for k in range(2):  # each component is defined up to its sign
    assert min(np.abs(ours[:, k] - expected[:, k]).max(), np.abs(ours[:, k] + expected[:, k]).max()) < 1e-8


def test_hardest_pairs_hand_example():
  x = np.array([0.0, 1.0, 4.0, 1.5])[:, None]  # labels 0, 0, 1, 1
  out = E.hardest_pairs(x, np.array([0, 0, 1, 1]), count=1)
  assert out["hard_positive_pairs"].tolist() == [[2, 3]] and out["hard_positive_scores"][0] == -2.5
  assert out["hard_negative_pairs"].tolist() == [[1, 3]] and out["hard_negative_scores"][0] == -0.5


def test_gathering_evaluator_keeps_held_out_classes_and_ignores_padding():
  rng = np.random.default_rng(9)
  labels = np.repeat(np.arange(10), 12)
  embeddings = np.eye(10)[labels] + rng.normal(scale=0.3, size=(120, 10))
  settings = E.EmbeddingEval(classes=(5, 6, 7, 8, 9), episodes=((5, 1), (20, 1)), num_episodes=200)
  evaluator = GatherEvaluator(["embedding", "label"], lambda rows: E.embedding_metrics(rows, settings))
  for start in range(0, 120, 50):  # padded batches of 50 with garbage in the padding rows
    part = slice(start, start + 50)
    n = len(labels[part])
    pad = 50 - n
    evaluator.update({"embedding": np.pad(embeddings[part], ((0, pad), (0, 0)), constant_values=99.0),
                      "label": np.pad(labels[part], (0, pad), constant_values=5), "mask": np.arange(50) < n})
  metrics = evaluator.result()
  held_out = labels >= 5
  direct = E.embedding_metrics({"embedding": embeddings[held_out], "label": labels[held_out]},
                               E.EmbeddingEval(episodes=((5, 1), (20, 1)), num_episodes=200))
  assert metrics["num_examples"] == 60 and metrics["num_classes"] == 5
  for name in E.metric_names(settings):
    assert metrics[name] == direct[name] or (np.isnan(metrics[name]) and np.isnan(direct[name])), name
  assert np.isnan(metrics["episodes_20way_1shot"])  # five classes cannot make 20-way episodes
  assert metrics["pca_points"].shape == (60, 2)


def test_parsers_and_names():
  assert E.parse_episodes("5x1, 20x1,5x5") == ((5, 1), (20, 1), (5, 5))
  assert E.parse_classes("5, 6,7") == (5, 6, 7) and E.parse_classes("") == ()
  assert E.far_metric_name(1e-3) == "tar_at_far_1e-3" and E.far_metric_name(0.01) == "tar_at_far_1e-2"
  for bad in ("5", "1x1", "5xa"):
    with pytest.raises(ConfigError):
      E.parse_episodes(bad)


@pytest.mark.parametrize("field,value,fix", [("refine_steps", -1, "refine_steps=-1 must be >= 0"),
                                             ("refine_temperature", 0.0, "refine_temperature=0.0 > 0"),
                                             ("queries", 0, "queries=0"), ("num_episodes", 0, "num_episodes=0"),
                                             ("enrol", 0, "enrol=0"), ("far", 0.0, "false accept rate"),
                                             ("far", 1.5, "between 0 and 1")])
def test_settings_errors_name_the_fix(field, value, fix):
  with pytest.raises(ConfigError) as error:
    E.EmbeddingEval(**{field: value})
  assert fix in str(error.value) and "\n" not in str(error.value)
