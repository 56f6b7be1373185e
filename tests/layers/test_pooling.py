"""Max pooling over strided slices vs `reduce_window` max (flax) and a NumPy loop."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from vision_jax.layers import conv, pooling


def _numpy_max_pool(x, k, s, pads):
  x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=-np.inf)
  n, h, w, c = x.shape
  out = np.empty((n, (h - k) // s + 1, (w - k) // s + 1, c), x.dtype)
  for i in range(out.shape[1]):
    for j in range(out.shape[2]):
      out[:, i, j] = x[:, i * s:i * s + k, j * s:j * s + k].max(axis=(1, 2))
  return out


@pytest.mark.parametrize("k,s,pads", [(2, 2, [(0, 0), (0, 0)]), (3, 2, [(1, 1), (1, 1)]),
                                      (3, 2, [(0, 1), (0, 1)]), (3, 1, [(1, 1), (1, 1)])])
def test_forward_matches_numpy_and_gradient_matches_reduce_window(k, s, pads):
  # Distinct values: no ties, so reduce_window's gradient is the unique subgradient.
  x = np.random.default_rng(0).permutation(2 * 9 * 9 * 3).reshape(2, 9, 9, 3).astype(np.float32)
  ours = pooling.max_pool_2d(x, (k, k), (s, s), pads)
  np.testing.assert_array_equal(ours, _numpy_max_pool(x, k, s, pads))
  loss = lambda f: (lambda v: (f(v) * np.arange(f(v).size).reshape(f(v).shape)).sum())
  grad_ours = jax.grad(loss(lambda v: pooling.max_pool_2d(v, (k, k), (s, s), pads)))(x)
  grad_ref = jax.grad(loss(lambda v: nn.max_pool(v, (k, k), (s, s), pads)))(x)
  np.testing.assert_array_equal(grad_ours, grad_ref)


def test_tied_inputs_split_the_gradient_and_keep_its_sum():
  x = np.ones((1, 2, 2, 1), np.float32)
  grad = jax.grad(lambda v: pooling.max_pool_2d(v, (2, 2), (2, 2), [(0, 0), (0, 0)]).sum())(x)
  assert float(grad.sum()) == pytest.approx(1.0)


def test_layer_conventions_match_flax():
  x = np.random.default_rng(1).normal(size=(2, 11, 11, 4)).astype(np.float32)
  np.testing.assert_array_equal(conv.max_pool(x, 3, 2, "SAME"), nn.max_pool(x, (3, 3), (2, 2), "SAME"))
  np.testing.assert_array_equal(conv.max_pool(x, 3, 2, "VALID"), nn.max_pool(x, (3, 3), (2, 2), "VALID"))
  # PyTorch ceil_mode on 11: (11 - 3) / 2 -> 4.0 -> 5 outputs either way; on 12 it adds one.
  assert conv.max_pool(np.zeros((1, 12, 12, 1)), 3, 2, 0, ceil_mode=True).shape == (1, 6, 6, 1)
