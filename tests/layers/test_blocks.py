"""Building blocks: pooling conventions, adaptive pooling, channel rounding, block shapes and residual logic."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import layers


def test_max_pool_ceil_mode_adds_a_partial_window():
  # 1x6 row, window 3, stride 2: floor mode has windows at 0, 2 -> 2 outputs; ceil mode adds the partial
  # window [4, 5] -> 3 outputs (PyTorch ceil_mode=True).
  x = jnp.arange(6, dtype=jnp.float32).reshape(1, 1, 6, 1)
  x = jnp.concatenate([x] * 3, axis=1)  # 3 rows so the height axis has exactly one window
  assert layers.max_pool(x, 3, 2)[0, 0, :, 0].tolist() == [2, 4]
  assert layers.max_pool(x, 3, 2, ceil_mode=True)[0, 0, :, 0].tolist() == [2, 4, 5]


def test_max_pool_ceil_mode_drops_window_starting_in_padding():
  # n = 4, window 2, stride 2, padding 1: ceil((4 + 2 - 2) / 2) + 1 = 3 windows starting at -1, 1, 3; all
  # start inside the input, so 3 outputs. With n = 3: ceil(3/2) + 1 = 3, but the last would start at 3 = n + p
  # - ... inside the right padding only, so PyTorch drops it: 2 outputs.
  assert layers.max_pool(jnp.zeros((1, 4, 4, 1)), 2, 2, 1, ceil_mode=True).shape[1] == 3
  assert layers.max_pool(jnp.zeros((1, 3, 3, 1)), 2, 2, 1, ceil_mode=True).shape[1] == 2


def test_avg_pool_count_include_pad():
  x = jnp.ones((1, 3, 3, 1))
  # Corner window covers 4 real pixels and 5 zeros of padding.
  assert float(layers.avg_pool(x, 3, 1, 1, count_include_pad=True)[0, 0, 0, 0]) == pytest.approx(4 / 9)
  assert float(layers.avg_pool(x, 3, 1, 1, count_include_pad=False)[0, 0, 0, 0]) == pytest.approx(1.0)


def test_adaptive_avg_pool_bins():
  x = jnp.arange(5, dtype=jnp.float32).reshape(1, 1, 5, 1)
  # 5 -> 3 bins: [0, 2), [1, 4), [3, 5) -> means 0.5, 2, 3.5.
  np.testing.assert_allclose(layers.adaptive_avg_pool(x, (1, 3))[0, 0, :, 0], [0.5, 2.0, 3.5])
  # 1 -> 7 bins replicate the single value.
  np.testing.assert_allclose(layers.adaptive_avg_pool(jnp.full((1, 1, 1, 2), 3.0), (7, 7)), 3.0)


@pytest.mark.parametrize("value,expected", [(32, 32), (35.2, 32), (36.1, 40), (24 * 0.75, 24), (1280 * 1.1, 1408),
                                            (320 * 1.1, 352), (3, 8), (100, 104)])
def test_make_divisible(value, expected):
  # Nearest multiple of 8 (35.2 -> 32, 36.1 -> 40), bumped up when more than 10% low (18 -> 16 -> 24).
  assert layers.make_divisible(value) == expected


def test_padding_conventions():
  conv = lambda padding: nn.Conv(1, (3, 3), 2, padding=layers.resolve_padding(padding, (3, 3)), use_bias=False)
  x = jnp.zeros((1, 8, 8, 1)).at[0, 0, 0, 0].set(1.0)
  kernel = {"params": {"kernel": jnp.ones((3, 3, 1, 1))}}
  # SYMMETRIC pads one zero on each side: the first window covers the corner pixel.
  assert float(conv("SYMMETRIC").apply(kernel, x)[0, 0, 0, 0]) == 1.0
  # TF "SAME" for stride 2 on an even size pads only at the end: the first window starts on pixel 0 too.
  assert float(conv("SAME").apply(kernel, x)[0, 0, 0, 0]) == 1.0
  y = jnp.zeros((1, 8, 8, 1)).at[0, 2, 2, 0].set(1.0)
  # Pixel (2, 2): windows start at -1, 1 (symmetric) vs 0, 2 (TF): only symmetric's second and TF's first
  # and second windows contain it.
  assert float(conv("SYMMETRIC").apply(kernel, y)[0, 0, 0, 0]) == 0.0
  assert float(conv("SAME").apply(kernel, y)[0, 0, 0, 0]) == 1.0


@pytest.mark.parametrize("block,kwargs,in_ch,out_ch", [
    (layers.BasicBlock, {"features": 64}, 64, 64),
    (layers.BasicBlock, {"features": 128, "strides": 2}, 64, 128),
    (layers.Bottleneck, {"features": 64}, 64, 256),
    (layers.Bottleneck, {"features": 128, "strides": 2, "stride_on_1x1": True}, 256, 512),
    (layers.InvertedResidual, {"features": 24, "strides": 2}, 16, 24),
    (layers.InvertedResidual, {"features": 16, "expand_ratio": 1, "se_ratio": 0.25}, 16, 16),
    (layers.DepthwiseSeparable, {"features": 64, "strides": 2}, 32, 64),
])
def test_block_output_shapes(block, kwargs, in_ch, out_ch):
  x = jnp.zeros((2, 8, 8, in_ch))
  out, _ = jax.eval_shape(lambda x: block(**kwargs).init_with_output(jax.random.key(0), x), x)
  s = kwargs.get("strides", 1)
  assert out.shape == (2, 8 // s, 8 // s, out_ch)


def test_identity_blocks_add_the_input():
  # With the residual branch's last batch-norm scale at zero, an identity block returns relu(x) (BasicBlock)
  # or x (InvertedResidual, linear bottleneck).
  x = jax.random.normal(jax.random.key(1), (1, 4, 4, 8))
  for block, post in ((layers.BasicBlock(8), nn.relu), (layers.InvertedResidual(8, expand_ratio=2), lambda v: v)):
    v = block.init(jax.random.key(0), x)
    last = "conv2" if isinstance(block, layers.BasicBlock) else "project"
    v = jax.tree_util.tree_map(lambda a: a, v)
    v["params"][last]["bn"]["scale"] = jnp.zeros_like(v["params"][last]["bn"]["scale"])
    v["params"][last]["bn"]["bias"] = jnp.zeros_like(v["params"][last]["bn"]["bias"])
    np.testing.assert_allclose(block.apply(v, x), post(x), atol=1e-6)


def test_dense_block_and_transition_channels():
  x = jnp.zeros((1, 8, 8, 64))
  out, _ = jax.eval_shape(lambda x: layers.DenseBlock(6, 32).init_with_output(jax.random.key(0), x), x)
  assert out.shape == (1, 8, 8, 64 + 6 * 32)
  out, _ = jax.eval_shape(lambda x: layers.Transition(128).init_with_output(jax.random.key(0), x), out)
  assert out.shape == (1, 4, 4, 128)


def test_squeeze_excite_scales_channels_into_zero_one():
  x = jnp.ones((1, 4, 4, 8))
  se = layers.SqueezeExcite(2)
  v = se.init(jax.random.key(0), x)
  y = se.apply(v, x)
  assert y.shape == x.shape and bool(jnp.all((y > 0) & (y < 1)))
  # Constant over space: one gate per channel.
  np.testing.assert_allclose(y, jnp.broadcast_to(y[:, :1, :1], y.shape))
