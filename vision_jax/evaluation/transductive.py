"""Transductive prototype refinement for N-way K-shot episodes (an extra, never the inductive result).

Soft k-means with the episode's unlabelled queries (Ren et al., "Meta-Learning for Semi-Supervised Few-Shot
Classification", ICLR 2018): the embeddings are L2-normalised; each step gives every query the soft assignment
softmax(temperature * cos(query, prototype)) over the episode's classes and moves each prototype to
(sum of its K support embeddings + sum_q z_qc * query_q) / (K + sum_q z_qc). Queries are then scored by the cosine to
the refined prototypes. Because each query's class depends on the other queries of its episode, results of this
kind are reported under names ending in `_transductive`.

`soft_kmeans` runs the same updates on any features under any score: `soft_kmeans_local_scores` refines prototype
feature maps under local matching (`local_matching`). Its `offsets` add a fixed inductive term to every score, the
assignments included (the hole prior's penalty, `hole_prior.hole_mismatch`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vision_jax.evaluation import local_matching


_CHUNK_VALUES = 1 << 22  # gathered feature values per block of episodes (32 MB of float64)


def _unit(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def soft_kmeans(queries: np.ndarray, supports: np.ndarray, scores: Callable[[np.ndarray, np.ndarray], np.ndarray],
                steps: int = 3, temperature: float = 10.0, offsets: np.ndarray | None = None) -> np.ndarray:
  """Soft k-means refinement of any episode features under any score (module docstring).

  Args:
    queries: [E, q, ...] each episode's query features; supports: [E, W, K, ...] each class's support features.
    scores: (queries [E, q, ...], prototypes [E, W, ...]) -> [E, q, W], higher = more alike.
    steps: refinement updates (0: the support means).
    temperature: sharpness of the soft assignments.
    offsets: [E, q, W] added to the scores at every assignment and in the result (an inductive prior such as the
      hole prior's penalty), or None.

  Returns:
    [E, q, W] float64 scores of the queries against the refined prototypes, plus the offsets.
  """
  extra = 0.0 if offsets is None else np.asarray(offsets, np.float64)
  shots = supports.shape[2]
  prototypes = supports.mean(2)
  for _ in range(steps):
    logits = temperature * (scores(queries, prototypes) + extra)
    z = np.exp(logits - logits.max(-1, keepdims=True))
    z /= z.sum(-1, keepdims=True)
    pulled = np.einsum("eqw,eq...->ew...", z, queries)
    weights = (shots + z.sum(1)).reshape(z.shape[0], z.shape[2], *([1] * (queries.ndim - 2)))
    prototypes = (supports.sum(2) + pulled) / weights
  return np.asarray(scores(queries, prototypes), np.float64) + extra


def _cosines(queries: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
  return np.einsum("eqd,ewd->eqw", queries, _unit(prototypes))


def soft_kmeans_class_scores(embeddings: np.ndarray, query_rows: np.ndarray, support_rows: np.ndarray,
                             steps: int = 3, temperature: float = 10.0,
                             offsets: np.ndarray | None = None) -> np.ndarray:
  """Cosine of every query to its episode's refined prototypes (module docstring).

  Args:
    embeddings: [N, D].
    query_rows: [E, q] rows of each episode's queries.
    support_rows: [E, W, K] rows of each class's support examples.
    steps: soft k-means updates (0: plain cosine to the support means).
    temperature: sharpness of the soft assignments.
    offsets: [E, q, W] added to every score (`soft_kmeans`), or None.

  Returns:
    [E, q, W] float64 scores.
  """
  x = _unit(np.asarray(embeddings, np.float64))
  return _by_episode_chunks(x, query_rows, support_rows, _cosines, steps, temperature, offsets)


def soft_kmeans_local_scores(maps: np.ndarray, query_rows: np.ndarray, support_rows: np.ndarray, radius: int,
                             steps: int = 3, temperature: float = 10.0,
                             offsets: np.ndarray | None = None) -> np.ndarray:
  """Local-matching scores (`local_matching`) of every query against its episode's refined prototype maps.

  A prototype is a map: at every location the mean of the L2-normalised descriptors of its support maps, then of
  the queries softly assigned to it. With K = 1 and no steps this is the inductive local rule; with K > 1 the
  starting prototype is the support maps' mean, where the inductive rule takes the best of the K maps.

  Args:
    maps: [N, h, w, C] feature maps.
    query_rows: [E, q]; support_rows: [E, W, K].
    radius: the matching radius.
    steps, temperature, offsets: as in `soft_kmeans`.

  Returns:
    [E, q, W] float64 scores.
  """
  return _by_episode_chunks(_unit(np.asarray(maps, np.float64)), query_rows, support_rows,
                            lambda q, p: local_matching.prototype_map_scores(q, p, radius), steps, temperature,
                            offsets)


def _by_episode_chunks(features: np.ndarray, query_rows: np.ndarray, support_rows: np.ndarray,
                       scores: Callable[[np.ndarray, np.ndarray], np.ndarray], steps: int, temperature: float,
                       offsets: np.ndarray | None) -> np.ndarray:
  """`soft_kmeans` over blocks of episodes (episodes refine independently), so that the gathered features stay near
  `_CHUNK_VALUES` floats; the last block is padded to the others' shape (one compiled shape for jitted scores)."""
  query_rows, support_rows = np.asarray(query_rows), np.asarray(support_rows)
  episodes = len(query_rows)
  per_episode = (query_rows[0].size + support_rows[0].size) * int(np.prod(features.shape[1:])) if episodes else 1
  chunk = min(episodes, max(1, _CHUNK_VALUES // max(1, per_episode)))
  out = []
  for start in range(0, episodes, chunk):
    block = np.arange(start, start + chunk).clip(max=episodes - 1)  # padded with the last episode
    extra = None if offsets is None else np.asarray(offsets)[block]
    refined = soft_kmeans(features[query_rows[block]], features[support_rows[block]], scores, steps, temperature,
                          extra)
    out.append(refined[:min(chunk, episodes - start)])
  return np.concatenate(out) if out else np.zeros(query_rows.shape + support_rows.shape[1:2])
