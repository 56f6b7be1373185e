"""The data behind a metric-learning run's pictures of verification and episodes (NumPy float64, on the host).

* `roc_curve`: true-accept rate at each false-accept rate of a grid, with the strict definition the reported TAR at
  FAR 1e-3 uses (`embedding.tar_at_far` is one point of it): the threshold is the (k+1)-th largest negative score,
  k = floor(far * negatives), ties rejected.
* `episode_confusion`: over every episode of a setting, how often a query of each class was given each class.
* `episode_examples`: the first episodes' supports and, for each class, its first query with the class it was given.
"""

from __future__ import annotations

import numpy as np


def roc_curve(scores: np.ndarray, positive: np.ndarray, fars: np.ndarray) -> np.ndarray:
  """True-accept rate [F] at each false-accept rate of `fars` [F] (module docstring).

  Args:
    scores: [P] pair scores (higher = more alike).
    positive: [P] bool, same class.
    fars: [F] false-accept rates in [0, 1].

  Returns:
    [F] float64 TARs; NaN where either kind of pair is absent.
  """
  scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
  fars = np.asarray(fars, np.float64)
  negatives = np.sort(scores[~positive])[::-1]
  positives = np.sort(scores[positive])
  if len(negatives) == 0 or len(positives) == 0:
    return np.full(fars.shape, np.nan)
  k = np.floor(fars * len(negatives) + 1e-9).astype(np.int64)
  thresholds = np.where(k < len(negatives), negatives[np.minimum(k, len(negatives) - 1)], -np.inf)
  accepted = len(positives) - np.searchsorted(positives, thresholds, side="right")  # positives strictly above
  return accepted / len(positives)


def far_grid(negatives: int, points: int = 200) -> np.ndarray:
  """[points] false-accept rates spaced evenly in log from one negative pair (1 / negatives, at least 1e-6) to 1."""
  low = max(1.0 / max(int(negatives), 1), 1e-6)
  return np.logspace(np.log10(low), 0.0, points)


def episode_confusion(labels: np.ndarray, query_rows: np.ndarray, support_rows: np.ndarray,
                      predicted: np.ndarray, classes: np.ndarray) -> np.ndarray:
  """Counts [C, C] of (true class, given class) over every query of every episode.

  Args:
    labels: [R] class of every row.
    query_rows: [E, q] each episode's query rows; support_rows: [E, N, K] its classes' support rows.
    predicted: [E, q] the index (0..N-1) of the episode class each query was given.
    classes: [C] the classes, in the matrix's order.

  Returns:
    int64 [C, C], rows the true class, columns the given class.
  """
  labels = np.asarray(labels).reshape(-1)
  index = {int(c): i for i, c in enumerate(np.asarray(classes).reshape(-1))}
  given = np.take_along_axis(labels[np.asarray(support_rows)[:, :, 0]], np.asarray(predicted), 1)
  true = labels[np.asarray(query_rows)]
  confusion = np.zeros((len(index), len(index)), np.int64)
  np.add.at(confusion, (np.vectorize(index.get)(true), np.vectorize(index.get)(given)), 1)
  return confusion


def episode_examples(labels: np.ndarray, query_rows: np.ndarray, support_rows: np.ndarray, predicted: np.ndarray,
                     queries: int, count: int = 3) -> dict[str, np.ndarray]:
  """The first `count` episodes' first support of each class and that class's first query.

  Args:
    labels, query_rows, support_rows, predicted: as `episode_confusion`.
    queries: queries per class (query j of an episode belongs to its class j // queries).
    count: episodes kept.

  Returns:
    episode_support_rows, episode_query_rows, episode_query_given (the class label each shown query was given),
    all int64 [min(count, E), N].
  """
  labels = np.asarray(labels).reshape(-1)
  kept = min(count, len(query_rows))
  supports = np.asarray(support_rows)[:kept, :, 0]
  shown = np.arange(supports.shape[1]) * queries  # the first query of each class
  given = np.take_along_axis(labels[supports], np.asarray(predicted)[:kept][:, shown], 1)
  return {"episode_support_rows": supports.astype(np.int64),
          "episode_query_rows": np.asarray(query_rows)[:kept][:, shown].astype(np.int64),
          "episode_query_given": given.astype(np.int64)}
