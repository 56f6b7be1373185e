"""NT-Xent / SupCon (`losses.metric.nt_xent_loss`) against a NumPy float64 loop over anchors and rows, and a
hand-worked two-view batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.losses import metric as L


def ref_nt_xent(embeddings, ids, temperature, mask=None):
  """Loop form: for each real anchor with a positive, minus the mean over its positives of
  log(exp(s_ap / t) / sum over real rows r != a of exp(s_ar / t)), s the cosine similarity; mean over anchors."""
  e = np.asarray(embeddings, np.float64)
  e = e / np.linalg.norm(e, axis=1, keepdims=True)
  n = len(ids)
  mask = np.ones(n, bool) if mask is None else np.asarray(mask)
  per_anchor = []
  for a in range(n):
    if not mask[a]:
      continue
    others = [r for r in range(n) if r != a and mask[r]]
    positives = [p for p in others if ids[p] == ids[a]]
    if not positives:
      continue
    denominator = sum(np.exp(e[a] @ e[r] / temperature) for r in others)
    per_anchor.append(-np.mean([np.log(np.exp(e[a] @ e[p] / temperature) / denominator) for p in positives]))
  return float(np.mean(per_anchor)) if per_anchor else 0.0


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_of_two_views_matches_the_loop(temperature):
  rng = np.random.default_rng(0)
  embeddings = rng.normal(size=(8, 5)).astype(np.float32)
  ids = np.tile(np.arange(4), 2)
  ours = L.nt_xent_loss(jnp.asarray(embeddings), jnp.asarray(ids), temperature)
  assert abs(float(ours) - ref_nt_xent(embeddings, ids, temperature)) < 1e-4


def test_supcon_with_labels_and_padding_rows_matches_the_loop():
  rng = np.random.default_rng(1)
  embeddings = rng.normal(size=(10, 4)).astype(np.float32)
  labels = np.array([0, 0, 1, 1, 1, 2, 3, 3, 0, 2])
  mask = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1, 0], bool)  # label 2 keeps one real row: no positive for it
  ours = L.nt_xent_loss(jnp.asarray(embeddings), jnp.asarray(labels), 0.2, jnp.asarray(mask))
  assert abs(float(ours) - ref_nt_xent(embeddings, labels, 0.2, mask)) < 1e-4
  grads = jax.grad(lambda e: L.nt_xent_loss(e, jnp.asarray(labels), 0.2, jnp.asarray(mask)))(jnp.asarray(embeddings))
  assert np.isfinite(np.asarray(grads)).all() and np.abs(np.asarray(grads)[~mask]).max() == 0.0


def test_hand_worked_two_views():
  # Rows: view 1 of images 0 and 1, then view 2. Unit vectors: 0 and 0' identical, 1 orthogonal to them, 1' = -1.
  e = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0]])
  # Anchor 0: cosines to (1, 0', 1') = (0, 1, 0): loss = -log(e^{1/t} / (2 + e^{1/t})); anchor 0' the same.
  # Anchor 1: cosines to (0, 0', 1') = (0, 0, -1): loss = -log(e^{-1/t} / (2 + e^{-1/t})); anchor 1' the same.
  t = 0.5
  expected = 0.5 * (-np.log(np.e ** 2 / (2 + np.e ** 2)) - np.log(np.e ** -2 / (2 + np.e ** -2)))
  assert abs(float(L.nt_xent_loss(e, jnp.asarray([0, 1, 0, 1]), t)) - expected) < 1e-5


def test_no_positive_gives_zero():
  e = jnp.eye(3)
  assert float(L.nt_xent_loss(e, jnp.arange(3), 0.2)) == 0.0
