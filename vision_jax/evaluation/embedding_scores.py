"""Scores between embeddings (higher = more alike): minus a distance ('euclidean', 'squared_euclidean', 'cosine' =
1 - cos) or, for Koch's pair classifier, its head's logit without the bias ('weighted_l1', sum_j w_j |a_j - b_j|).
Float64 NumPy, in blocks of bounded memory; `evaluation.embedding` builds every metric on them."""

from __future__ import annotations

import numpy as np

from vision_jax.errors import ConfigError

SCORES = ("euclidean", "squared_euclidean", "cosine", "weighted_l1")
_CHUNK_ELEMENTS = 1 << 24  # rows x columns x dims per block of `score_matrix` / `paired_scores` (128 MiB of float64)


def _check_score(metric: str, weights: np.ndarray | None) -> None:
  if metric not in SCORES:
    raise ConfigError(f"unknown embedding score {metric!r}; use one of {', '.join(SCORES)}")
  if metric == "weighted_l1" and weights is None:
    raise ValueError("the weighted_l1 score needs the pair head's weights")


def _scores(a: np.ndarray, b: np.ndarray, metric: str, weights: np.ndarray | None) -> np.ndarray:
  """Scores of every row of a [n, D] against every row of b [m, D] -> [n, m] (no chunking)."""
  if metric == "weighted_l1":
    return np.abs(a[:, None, :] - b[None, :, :]) @ weights
  if metric == "cosine":
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return -(1.0 - a @ b.T)
  squared = np.maximum(np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2.0 * a @ b.T, 0.0)
  return -(np.sqrt(squared) if metric == "euclidean" else squared)


def score_matrix(a: np.ndarray, b: np.ndarray, metric: str = "euclidean",
                 weights: np.ndarray | None = None) -> np.ndarray:
  """Scores (higher = more alike) of every row of `a` against every row of `b`.

  Args:
    a: [n, D] embeddings; b: [m, D] embeddings.
    metric: one of `SCORES` (module docstring).
    weights: [D] pair-head weights for 'weighted_l1'.

  Returns:
    [n, m] float64 scores.
  """
  _check_score(metric, weights)
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  w = None if weights is None else np.asarray(weights, np.float64).reshape(-1)
  rows = max(1, _CHUNK_ELEMENTS // max(1, len(b) * (a.shape[1] if metric == "weighted_l1" else 1)))
  return np.concatenate([_scores(a[s:s + rows], b, metric, w) for s in range(0, len(a), rows)] or
                        [np.zeros((0, len(b)))])


def paired_scores(embeddings: np.ndarray, first: np.ndarray, second: np.ndarray, metric: str = "euclidean",
                  weights: np.ndarray | None = None) -> np.ndarray:
  """Scores of the pairs (embeddings[first[p]], embeddings[second[p]]) -> [P] float64."""
  _check_score(metric, weights)
  e = np.asarray(embeddings, np.float64)
  w = None if weights is None else np.asarray(weights, np.float64).reshape(-1)
  rows = max(1, _CHUNK_ELEMENTS // max(1, e.shape[1]))
  out = []
  for s in range(0, len(first), rows):
    a, b = e[first[s:s + rows]], e[second[s:s + rows]]
    if metric == "weighted_l1":
      out.append(np.abs(a - b) @ w)
    elif metric == "cosine":
      na = np.maximum(np.linalg.norm(a, axis=1), 1e-12)
      nb = np.maximum(np.linalg.norm(b, axis=1), 1e-12)
      out.append(-(1.0 - np.sum(a * b, 1) / (na * nb)))
    else:
      squared = np.sum(np.square(a - b), 1)
      out.append(-(np.sqrt(squared) if metric == "euclidean" else squared))
  return np.concatenate(out) if out else np.zeros((0,))


def prototype_class_scores(embeddings: np.ndarray, query_rows: np.ndarray, support_rows: np.ndarray,
                           metric: str = "euclidean", weights: np.ndarray | None = None) -> np.ndarray:
  """Scores of every query of every episode against its classes' prototypes (support means in embedding space).

  Args:
    embeddings: [N, D].
    query_rows: [E, q] rows queried in each episode; support_rows: [E, W, K] each class's support rows.
    metric, weights: the score (`score_matrix`).

  Returns:
    [E, q, W] float64 scores.
  """
  embeddings = np.asarray(embeddings, np.float64)
  out = np.empty(np.shape(query_rows) + (np.shape(support_rows)[1],))
  for e in range(len(query_rows)):
    prototypes = embeddings[support_rows[e]].mean(1)
    out[e] = score_matrix(embeddings[query_rows[e]], prototypes, metric, weights)
  return out
