"""Soft k-means prototype refinement against a float64 per-episode loop."""

import numpy as np
import pytest

from vision_jax.evaluation import local_matching, transductive


def _unit(v):
  return v / np.linalg.norm(v)


def _cosine(query, prototype):
  return _unit(prototype) @ query


def _local(query, prototype, radius):
  """Mean over the query map's locations of the best cosine within +-radius in the prototype map."""
  h, w, _ = query.shape
  total = 0.0
  for y in range(h):
    for x in range(w):
      total += max(_unit(prototype[y + dy, x + dx]) @ _unit(query[y, x])
                   for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
                   if 0 <= y + dy < h and 0 <= x + dx < w)
  return total / (h * w)


def _reference(embeddings, queries, supports, steps, temperature, offsets=None, score=_cosine):
  """One episode at a time, one class at a time, in plain float64 loops (features unit-normalised: whole vectors,
  or each location's descriptor for maps)."""
  x = np.asarray(embeddings, np.float64)
  x = x / np.linalg.norm(x, axis=-1, keepdims=True)
  offsets = np.zeros(queries.shape + (supports.shape[1],)) if offsets is None else offsets
  out = np.zeros(queries.shape + (supports.shape[1],))
  for e in range(len(queries)):
    prototypes = [x[supports[e, c]].mean(0) for c in range(supports.shape[1])]
    for _ in range(steps):
      z = np.array([[np.exp(temperature * (score(x[q], p) + offsets[e, i, c])) for c, p in enumerate(prototypes)]
                    for i, q in enumerate(queries[e])])
      z /= z.sum(1, keepdims=True)
      prototypes = [(x[supports[e, c]].sum(0) + sum(z[i, c] * x[q] for i, q in enumerate(queries[e]))) /
                    (supports.shape[2] + z[:, c].sum()) for c in range(supports.shape[1])]
    for i, q in enumerate(queries[e]):
      out[e, i] = [score(x[q], p) + offsets[e, i, c] for c, p in enumerate(prototypes)]
  return out


@pytest.mark.parametrize("steps,shots", [(0, 2), (1, 1), (3, 2)])
def test_soft_kmeans_matches_a_float64_loop(steps, shots):
  rng = np.random.default_rng(0)
  embeddings = rng.normal(size=(20, 6))
  queries = rng.integers(0, 20, (2, 4))
  supports = rng.integers(0, 20, (2, 3, shots))
  got = transductive.soft_kmeans_class_scores(embeddings, queries, supports, steps, temperature=5.0)
  np.testing.assert_allclose(got, _reference(embeddings, queries, supports, steps, 5.0), atol=1e-12)


def test_refinement_pulls_a_prototype_towards_its_queries():
  # Support of class 0 at 60 degrees from the queries' direction, class 1's support at 100 degrees on the other
  # side: the plain prototypes give class 0 a cosine of 0.5; refinement moves it towards the (class-0) queries.
  angles = np.deg2rad([0.0, 2.0, -2.0, 60.0, -100.0])
  embeddings = np.stack([np.cos(angles), np.sin(angles)], 1)
  plain = transductive.soft_kmeans_class_scores(embeddings, np.array([[0, 1, 2]]), np.array([[[3], [4]]]), 0)
  refined = transductive.soft_kmeans_class_scores(embeddings, np.array([[0, 1, 2]]), np.array([[[3], [4]]]), 3)
  assert plain[0, 0, 0] == pytest.approx(0.5) and refined[0, 0, 0] > 0.9 and refined[0, 0, 1] < plain[0, 0, 0]


@pytest.mark.parametrize("steps", [1, 3])
def test_offsets_enter_assignments_and_scores(steps):
  rng = np.random.default_rng(1)
  embeddings = rng.normal(size=(20, 6))
  queries, supports = rng.integers(0, 20, (2, 4)), rng.integers(0, 20, (2, 3, 1))
  offsets = rng.normal(scale=0.3, size=(2, 4, 3))
  got = transductive.soft_kmeans_class_scores(embeddings, queries, supports, steps, 5.0, offsets=offsets)
  np.testing.assert_allclose(got, _reference(embeddings, queries, supports, steps, 5.0, offsets), atol=1e-12)
  plain = transductive.soft_kmeans_class_scores(embeddings, queries, supports, steps, 5.0)
  assert not np.allclose(got - offsets, plain)  # the offsets moved the prototypes, not just the final scores


@pytest.mark.parametrize("radius,steps,shots", [(0, 0, 1), (1, 0, 1), (0, 2, 1), (1, 2, 2)])
def test_local_refinement_matches_a_float64_loop(radius, steps, shots):
  rng = np.random.default_rng(2)
  maps = rng.normal(size=(12, 3, 3, 4))
  queries, supports = rng.integers(0, 12, (2, 3)), rng.integers(0, 12, (2, 2, shots))
  offsets = rng.normal(scale=0.2, size=(2, 3, 2))
  got = transductive.soft_kmeans_local_scores(maps, queries, supports, radius, steps, 4.0, offsets=offsets)
  want = _reference(maps, queries, supports, steps, 4.0, offsets, lambda q, p: _local(q, p, radius))
  np.testing.assert_allclose(got, want, atol=1e-5)  # float32 matching
  if steps == 0 and shots == 1:  # no refinement, one shot: the inductive local rule itself
    np.testing.assert_allclose(got - offsets, local_matching.episode_class_scores(maps, queries, supports, radius),
                               atol=1e-6)


def test_episode_blocks_give_the_same_scores(monkeypatch):
  rng = np.random.default_rng(3)
  maps, embeddings = rng.normal(size=(15, 2, 2, 3)), rng.normal(size=(15, 5))
  queries, supports = rng.integers(0, 15, (7, 4)), rng.integers(0, 15, (7, 2, 1))
  offsets = rng.normal(scale=0.2, size=(7, 4, 2))
  whole = (transductive.soft_kmeans_local_scores(maps, queries, supports, 1, 2, 4.0, offsets),
           transductive.soft_kmeans_class_scores(embeddings, queries, supports, 2, 4.0, offsets))
  monkeypatch.setattr(transductive, "_CHUNK_VALUES", 200)  # blocks of 2 + padded 1 (local), 6 + padded 1 (class)
  blocks = (transductive.soft_kmeans_local_scores(maps, queries, supports, 1, 2, 4.0, offsets),
            transductive.soft_kmeans_class_scores(embeddings, queries, supports, 2, 4.0, offsets))
  for got, want in zip(blocks, whole):
    np.testing.assert_allclose(got, want, atol=1e-6)
