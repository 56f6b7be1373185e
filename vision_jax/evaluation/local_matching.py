"""Deformation-tolerant matching of convolutional feature maps for one-shot evaluation (inductive).

A query image and a class's support images are compared location by location instead of as two flattened vectors:
every query location takes the best similarity among the support locations within +-`radius` rows and columns of
it, over all of the class's K support images (the image distortion model of Keysers et al., PAMI 2007, applied to
conv features; with a radius covering the whole map it is DN4's image-to-class measure with k = 1, Li et al.,
CVPR 2019), and the class score is the mean of those best similarities over the query's locations. A stroke moved
by a pixel, or a part drawn a little higher, then still finds its partner, which a flattened cosine cannot.

Similarities: each location's descriptor (its C channels) is L2-normalised and compared by the dot product
(cosine), a descriptor that is all zeros (a ReLU map's empty background) scoring 0 against everything. Support
locations outside the map do not take part.

The maps matched are those entering the backbone's first linear layer (`EmbeddingNet.features(layer="first_maps")`:
simple_cnn's 5x5x64 after its last pooling), i.e. the unflattened `embedding.eval_features=conv` vectors.

Everything runs in float32 jitted chunks; `location_similarities` is the building block the tests check against a
float64 loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import ConfigError

MATCHES = ("prototype", "local")
_CHUNK_ELEMENTS = 1 << 25  # queries x supports x locations x channels per jitted block


def unit_descriptors(maps: jax.Array) -> jax.Array:
  """Each location's descriptor [..., C] divided by its L2 norm (zero descriptors stay zero)."""
  maps = maps.astype(jnp.float32)
  return maps / jnp.maximum(jnp.linalg.norm(maps, axis=-1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames=("radius",))
def location_similarities(queries: jax.Array, supports: jax.Array, radius: int) -> jax.Array:
  """Best cosine of each query location among the support locations within +-radius (module docstring).

  Args:
    queries: [n, h, w, C] feature maps.
    supports: [m, h, w, C] feature maps of the same shape.
    radius: largest row and column offset searched (0: the same location only).

  Returns:
    [n, m, h, w] float32: entry (i, j, y, x) = max over |dy|, |dx| <= radius with (y + dy, x + dx) inside the map of
    cos(queries[i, y, x], supports[j, y + dy, x + dx]).
  """
  _, h, w, _ = queries.shape
  q, s = unit_descriptors(queries), unit_descriptors(supports)
  r_y, r_x = min(radius, h - 1), min(radius, w - 1)
  padded = jnp.pad(s, ((0, 0), (r_y, r_y), (r_x, r_x), (0, 0)))
  inside = jnp.pad(jnp.ones((h, w), bool), ((r_y, r_y), (r_x, r_x)))
  best = jnp.full((q.shape[0], s.shape[0], h, w), -jnp.inf, jnp.float32)
  for dy in range(2 * r_y + 1):
    for dx in range(2 * r_x + 1):
      shifted = padded[:, dy:dy + h, dx:dx + w]
      similarities = jnp.einsum("nyxc,myxc->nmyx", q, shifted, precision=jax.lax.Precision.HIGHEST)
      best = jnp.maximum(best, jnp.where(inside[dy:dy + h, dx:dx + w], similarities, -jnp.inf))
  return best


@functools.partial(jax.jit, static_argnames=("radius",))
def _episode_class_scores(queries: jax.Array, supports: jax.Array, radius: int) -> jax.Array:
  """[E, q, h, w, C] queries and [E, W, K, h, w, C] supports -> [E, q, W] class scores."""
  e, ways, shots = supports.shape[:3]
  flat = supports.reshape((e, ways * shots) + supports.shape[3:])
  best = jax.vmap(lambda qu, su: location_similarities(qu, su, radius))(queries, flat)  # [E, q, W * K, h, w]
  best = best.reshape(best.shape[:2] + (ways, shots, -1)).max(axis=3)  # best over the class's shots
  return best.mean(-1)


def episode_class_scores(maps: np.ndarray, query_rows: np.ndarray, support_rows: np.ndarray,
                         radius: int) -> np.ndarray:
  """Class scores of every query of every episode by local matching against its episode's support sets.

  Args:
    maps: [N, h, w, C] feature maps of the evaluated examples.
    query_rows: [E, q] int rows of `maps` queried in each episode.
    support_rows: [E, W, K] int rows of each class's K support examples.
    radius: the matching radius (`location_similarities`).

  Returns:
    [E, q, W] float64 class scores (higher = more alike).
  """
  query_rows, support_rows = np.asarray(query_rows), np.asarray(support_rows)
  per_episode = (query_rows.shape[1] * support_rows[0].size * int(np.prod(maps.shape[1:])) *
                 (2 * radius + 1) ** 2)
  chunk = max(1, _CHUNK_ELEMENTS // max(1, per_episode))
  maps = jnp.asarray(maps, jnp.float32)
  out = []
  for start in range(0, len(query_rows), chunk):
    q, s = query_rows[start:start + chunk], support_rows[start:start + chunk]
    if len(q) < chunk and start:  # pad the last chunk to the compiled shape
      q = np.concatenate([q, np.repeat(q[-1:], chunk - len(q), 0)])
      s = np.concatenate([s, np.repeat(s[-1:], chunk - len(s), 0)])
    scores = _episode_class_scores(maps[q], maps[s], radius)
    out.append(np.asarray(scores, np.float64)[:len(query_rows[start:start + chunk])])
  return np.concatenate(out)


def prototype_map_scores(queries: np.ndarray, prototypes: np.ndarray, radius: int) -> np.ndarray:
  """Local-matching scores of each episode's query maps [E, q, h, w, C] against its class prototype maps
  [E, W, h, w, C] (one map per class, e.g. transductively refined) -> [E, q, W] float64."""
  queries, prototypes = np.asarray(queries), np.asarray(prototypes)
  per_episode = queries.shape[1] * prototypes[0].size * (2 * radius + 1) ** 2
  chunk = max(1, _CHUNK_ELEMENTS // max(1, per_episode))
  out = []
  for start in range(0, len(queries), chunk):
    q, p = queries[start:start + chunk], prototypes[start:start + chunk]
    if len(q) < chunk and start:  # pad the last chunk to the compiled shape
      q, p = (np.concatenate([a, np.repeat(a[-1:], chunk - len(a), 0)]) for a in (q, p))
    scores = _episode_class_scores(jnp.asarray(q, jnp.float32), jnp.asarray(p[:, :, None], jnp.float32), radius)
    out.append(np.asarray(scores, np.float64)[:len(queries[start:start + chunk])])
  return np.concatenate(out) if out else np.zeros(queries.shape[:2] + prototypes.shape[1:2])


def pooled_score_matrix(a: np.ndarray, b: np.ndarray, radius: int) -> np.ndarray:
  """Local-matching scores of every map of `a` [n, h, w, C] against every column of `b` [m, P, h, w, C], whose P
  maps are pooled like a class's shots (e.g. an enrolled image's augmented views) -> [n, m] float64: the mean over
  a's locations of the best cosine within +-radius over the column's P maps. P = 1 is `local_score_matrix`."""
  b = jnp.asarray(b, jnp.float32)
  per_row = int(np.prod(b.shape)) * (2 * radius + 1) ** 2
  rows = max(1, _CHUNK_ELEMENTS // max(1, per_row))
  out = [np.asarray(_episode_class_scores(jnp.asarray(a[s:s + rows], jnp.float32)[None], b[None], radius)[0],
                    np.float64) for s in range(0, len(a), rows)]
  return np.concatenate(out) if out else np.zeros((0, len(b)))


def local_score_matrix(a: np.ndarray, b: np.ndarray, radius: int) -> np.ndarray:
  """Local-matching scores of every map of `a` [n, h, w, C] against every map of `b` [m, h, w, C] -> [n, m]
  float64 (the mean over a's locations of the best cosine within +-radius in b): `pooled_score_matrix` with one map
  per column."""
  return pooled_score_matrix(a, np.asarray(b)[:, None], radius)


def check_match(match: str, radius: int, pair_classifier: bool = False) -> None:
  """Raises a one-line ConfigError for an unknown matching rule, a negative radius or local matching of a pair
  classifier (which scores its embeddings with its own head)."""
  if match not in MATCHES:
    raise ConfigError(f"embedding.match={match!r}; use prototype (nearest mean embedding) or local (conv maps "
                      "matched location by location within embedding.radius)")
  if int(radius) < 0:
    raise ConfigError(f"embedding.radius={radius} must be >= 0 (0: the same location only)")
  if match == "local" and pair_classifier:
    raise ConfigError("embedding.match=local matches an embedding network's conv maps; the pair classifier scores its "
                      "embeddings: use match=prototype")
