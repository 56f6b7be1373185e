"""The four-block conv embedding (`conv4`): a NumPy float64 forward (conv 3x3 "same", eval-mode batch norm, ReLU,
2x2 max pooling with the remainder dropped), output sizes and parameter counts by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import models

EPS = 1e-5  # flax BatchNorm's epsilon


def np_conv_same(x, kernel):
  """x [H, W, C], kernel [3, 3, C, O] -> [H, W, O] (cross-correlation, zero padding 1)."""
  h, w, _ = x.shape
  padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
  out = np.zeros((h, w, kernel.shape[-1]))
  for i in range(h):
    for j in range(w):
      out[i, j] = np.tensordot(padded[i:i + 3, j:j + 3], kernel, axes=3)
  return out


def np_forward(x, params, stats, blocks):
  for b in range(1, blocks + 1):
    bn, moments = params[f"conv{b}_bn"], stats[f"conv{b}_bn"]
    x = np_conv_same(x, params[f"conv{b}"]["kernel"])
    x = (x - moments["mean"]) / np.sqrt(moments["var"] + EPS) * bn["scale"] + bn["bias"]
    x = np.maximum(x, 0.0)
    h, w = x.shape[0] // 2, x.shape[1] // 2
    x = x[:2 * h, :2 * w].reshape(h, 2, w, 2, -1).max(axis=(1, 3))
  return x.reshape(-1)


def randomised(tree, rng):
  return jax.tree.map(lambda v: np.asarray(rng.normal(size=v.shape) * 0.5 + (1.0 if v.ndim == 1 else 0.0)), tree)


def test_forward_matches_numpy_with_trained_statistics():
  model = models.get("conv4", widths=(3, 4), head=False)
  x = np.random.default_rng(0).normal(size=(2, 7, 7, 2))
  variables = model.init(jax.random.key(0), jnp.asarray(x, jnp.float32))
  rng = np.random.default_rng(1)
  params = randomised(variables["params"], rng)
  stats = jax.tree.map(lambda v: np.abs(v) + 0.2, randomised(variables["batch_stats"], rng))
  out = np.asarray(model.apply({"params": params, "batch_stats": stats}, jnp.asarray(x, jnp.float32)))
  assert out.shape == (2, 4)  # 7 -> 3 -> 1, 4 channels
  expected = np.stack([np_forward(xi, params, stats, 2) for xi in x])
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("head,size,expected_shape", [(False, 28, (2, 64)), (True, 28, (2, 16)), (False, 32, (2, 256))])
def test_output_shapes(head, size, expected_shape):
  model = models.get("conv4", num_classes=16, head=head)
  out = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x)[0], jnp.zeros((2, size, size, 1)))
  assert out.shape == expected_shape  # 28 -> 14 -> 7 -> 3 -> 1; 32 -> 16 -> 8 -> 4 -> 2 (2 x 2 x 64)


def test_parameter_count_by_hand():
  counts = models.count_params(models.get("conv4", num_classes=16), (28, 28, 1))
  # conv1 3*3*1*64 (no bias with batch norm) + 3 x 3*3*64*64, batch norm scale + offset 4 x 128, head 64*16 + 16.
  expected = 9 * 64 + 3 * 9 * 64 * 64 + 4 * 128 + 64 * 16 + 16
  assert counts["params"] == expected == 112_720
  assert counts["batch_stats"] == 4 * 128
