"""Transductive prototype refinement for N-way K-shot episodes (an extra, never the inductive result).

Soft k-means with the episode's unlabelled queries (Ren et al., "Meta-Learning for Semi-Supervised Few-Shot
Classification", ICLR 2018): the embeddings are L2-normalised; each step gives every query the soft assignment
softmax(temperature * cos(query, prototype)) over the episode's classes and moves each prototype to
(sum of its K support embeddings + sum_q z_qc * query_q) / (K + sum_q z_qc). Queries are then scored by the cosine to
the refined prototypes. Because each query's class depends on the other queries of its episode, results of this
kind are reported under names ending in `_transductive`.
"""

from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def soft_kmeans_class_scores(embeddings: np.ndarray, query_rows: np.ndarray, support_rows: np.ndarray,
                             steps: int = 3, temperature: float = 10.0) -> np.ndarray:
  """Cosine of every query to its episode's refined prototypes (module docstring).

  Args:
    embeddings: [N, D].
    query_rows: [E, q] rows of each episode's queries.
    support_rows: [E, W, K] rows of each class's support examples.
    steps: soft k-means updates (0: plain cosine to the support means).
    temperature: sharpness of the soft assignments.

  Returns:
    [E, q, W] float64 scores.
  """
  x = _unit(np.asarray(embeddings, np.float64))
  queries, supports = x[np.asarray(query_rows)], x[np.asarray(support_rows)]  # [E, q, D], [E, W, K, D]
  shots = supports.shape[2]
  prototypes = supports.mean(2)
  for _ in range(steps):
    logits = temperature * np.einsum("eqd,ewd->eqw", queries, _unit(prototypes))
    z = np.exp(logits - logits.max(-1, keepdims=True))
    z /= z.sum(-1, keepdims=True)
    prototypes = (supports.sum(2) + np.einsum("eqw,eqd->ewd", z, queries)) / (shots + z.sum(1)[..., None])
  return np.einsum("eqd,ewd->eqw", queries, _unit(prototypes))
