"""Soft k-means prototype refinement against a float64 per-episode loop."""

import numpy as np
import pytest

from vision_jax.evaluation import transductive


def _reference(embeddings, queries, supports, steps, temperature):
  """One episode at a time, one class at a time, in plain float64 loops."""
  def unit(v):
    return v / np.linalg.norm(v)
  x = np.array([unit(v) for v in np.asarray(embeddings, np.float64)])
  out = np.zeros(queries.shape + (supports.shape[1],))
  for e in range(len(queries)):
    prototypes = [x[supports[e, c]].mean(0) for c in range(supports.shape[1])]
    for _ in range(steps):
      z = np.array([[np.exp(temperature * unit(p) @ x[q]) for p in prototypes] for q in queries[e]])
      z /= z.sum(1, keepdims=True)
      prototypes = [(x[supports[e, c]].sum(0) + sum(z[i, c] * x[q] for i, q in enumerate(queries[e]))) /
                    (supports.shape[2] + z[:, c].sum()) for c in range(supports.shape[1])]
    for i, q in enumerate(queries[e]):
      out[e, i] = [unit(p) @ x[q] for p in prototypes]
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
