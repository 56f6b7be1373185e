"""Augmented support views for one-shot episodes and gallery recognition (inductive test-time augmentation).

A single enrolled example shows one pose of its class. Each evaluated image is also embedded in V - 1 augmented
views (the training augmentation, drawn per image from its pixels, so the views do not depend on the batch), and a
query is scored against a class's supports in all their views; queries are always scored as they are, so each query
is still classified on its own against its support set: the protocol stays inductive. This is test-time
augmentation of the enrolled side (Krizhevsky et al. 2012's multi-view testing, applied to the supports):
  * the prototype rule takes the best over the views v of its score against the prototype of the supports in view v
    (`best_view_class_scores`, `best_view_pair_scores`);
  * local matching pools the views like extra shots: each query location takes its best cosine over every view of
    every support map (`view_rows` gives those rows; `local_matching.pooled_score_matrix` for the gallery).

Rows: the evaluator's arrays are interleaved as `interleave` writes them, row i * V + v holding image i in view v.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

ClassScores = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (query_rows [E, q], support_rows [E, N, K]) -> [E, q, N]
PairScores = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows_a [n], rows_b [m]) -> [n, m]


def interleave(plain: np.ndarray, views: np.ndarray) -> np.ndarray:
  """Each image's plain row followed by its augmented views.

  Args:
    plain: [N, ...] rows of the images as they are (view 0).
    views: [N, V - 1, ...] rows of the augmented views.

  Returns:
    [N * V, ...]: row i * V + v is image i in view v.
  """
  plain, views = np.asarray(plain), np.asarray(views)
  if views.shape[0] != plain.shape[0] or views.shape[2:] != plain.shape[1:]:
    raise ValueError(f"views {views.shape} do not match plain rows {plain.shape}: expected [N, V - 1, ...]")
  joined = np.concatenate([plain[:, None], views], axis=1)
  return joined.reshape((-1,) + plain.shape[1:])


def view_rows(rows: np.ndarray, views: int) -> np.ndarray:
  """Interleaved rows of every view of images `rows` [...] -> [..., V] (row i * V + v for view v of image i)."""
  return np.asarray(rows)[..., None] * views + np.arange(views)


def best_view_class_scores(base: ClassScores, views: int) -> ClassScores:
  """Episode scores with the best of `views` support views (module docstring).

  Args:
    base: scores over interleaved rows, (query_rows [E, q], support_rows [E, N, K]) -> [E, q, N].
    views: V, the views per image (1: `base` itself on the plain rows).

  Returns:
    (query_rows [E, q], support_rows [E, N, K]) of image indices -> [E, q, N] scores.
  """
  def class_scores(query_rows: np.ndarray, support_rows: np.ndarray) -> np.ndarray:
    queries, supports = np.asarray(query_rows) * views, np.asarray(support_rows) * views
    return np.max(np.stack([base(queries, supports + v) for v in range(views)]), axis=0)
  return class_scores


def best_view_pair_scores(base: PairScores, views: int) -> PairScores:
  """Gallery scores of probes (view 0) against enrolled images with the best of `views` views of each.

  Args:
    base: scores over interleaved rows, (rows_a [n], rows_b [m]) -> [n, m].
    views: V, the views per image.

  Returns:
    (probe_rows [n], gallery_rows [m]) of image indices -> [n, m] scores.
  """
  def pair_scores(rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    probes, gallery = np.asarray(rows_a) * views, np.asarray(rows_b) * views
    return np.max(np.stack([base(probes, gallery + v) for v in range(views)]), axis=0)
  return pair_scores


def view_keys(images: jax.Array, seed: int, view: int) -> jax.Array:
  """Per-image PRNG keys of augmented view `view`, made of each image's pixels, so an image draws the same views in
  any batch.

  Args:
    images: [N, H, W, C] stored images.
    seed: the evaluation seed.
    view: the view index (>= 1).

  Returns:
    [N] keys (`jax.random.PRNGKey` format, [N, 2] uint32).
  """
  flat = jnp.round(images.reshape(images.shape[0], -1).astype(jnp.float32)).astype(jnp.int32).astype(jnp.uint32)
  position_weights = jnp.arange(1, flat.shape[1] + 1, dtype=jnp.uint32) * jnp.uint32(2654435761)  # Knuth's hash
  digests = jnp.sum(flat * position_weights, axis=1, dtype=jnp.uint32)
  view_key = jax.random.fold_in(jax.random.PRNGKey(seed), view)
  return jax.vmap(lambda digest: jax.random.fold_in(view_key, digest))(digests)
