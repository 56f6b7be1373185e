"""Upsampling layers against the lecture's worked example, NumPy scatter/interpolation references and PyTorch
outputs (tests/fixtures/segmentation/torch_segmentation.npz, made by make_torch_fixtures.py there)."""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.errors import ConfigError
from vision_jax.layers import upsampling

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "segmentation", "torch_segmentation.npz")


def scatter_reference(x, kernel, stride, padding, output_padding):
  """Transposed conv by definition: each input pixel adds x * kernel at stride * position, then crop."""
  n, h, w, _ = x.shape
  kh, kw, _, c_out = kernel.shape
  full = np.zeros((n, (h - 1) * stride + kh + output_padding, (w - 1) * stride + kw + output_padding, c_out))
  for i in range(h):
    for j in range(w):
      full[:, i * stride:i * stride + kh, j * stride:j * stride + kw] += np.einsum("nc,abcd->nabd", x[:, i, j],
                                                                                    kernel)
  return full[:, padding:full.shape[1] - padding, padding:full.shape[2] - padding]


def test_lecture_worked_example():
  x = jnp.array([[0., 1.], [2., 3.]]).reshape(1, 2, 2, 1)
  kernel = jnp.array([[0., 1.], [2., 3.]]).reshape(2, 2, 1, 1)
  out = upsampling.transposed_conv(x, kernel)
  np.testing.assert_array_equal(np.asarray(out)[0, :, :, 0], [[0, 0, 1], [0, 4, 6], [4, 12, 9]])


def test_flax_conv_transpose_semantics():
  x = jnp.array([[0., 1.], [2., 3.]]).reshape(1, 2, 2, 1)
  kernel = jnp.array([[0., 1.], [2., 3.]]).reshape(2, 2, 1, 1)
  lecture = np.array([[0, 0, 1], [0, 4, 6], [4, 12, 9]], np.float32)
  params = {"params": {"kernel": kernel}}
  flipped = nn.ConvTranspose(1, (2, 2), padding="VALID", use_bias=False, transpose_kernel=True).apply(params, x)
  np.testing.assert_array_equal(np.asarray(flipped)[0, :, :, 0], lecture)
  plain = nn.ConvTranspose(1, (2, 2), padding="VALID", use_bias=False).apply(params, x)
  rotated = nn.ConvTranspose(1, (2, 2), padding="VALID", use_bias=False).apply(
      {"params": {"kernel": kernel[::-1, ::-1]}}, x)
  assert not np.array_equal(np.asarray(plain)[0, :, :, 0], lecture)  # the default correlates, unflipped
  np.testing.assert_array_equal(np.asarray(rotated)[0, :, :, 0], lecture)


@pytest.mark.parametrize("n,k,s,p,op", [(2, 2, 1, 0, 0), (4, 4, 2, 1, 0), (5, 3, 2, 1, 1), (7, 16, 8, 4, 0),
                                        (3, 3, 3, 0, 2), (6, 5, 3, 1, 0), (4, 1, 2, 1, 1),  # p > k - 1
                                        (5, 2, 2, 0, 0), (3, 3, 3, 0, 0)])  # kernel == stride: the matmul path
def test_output_size_and_values_match_scatter_definition(n, k, s, p, op):
  expected_size = (n - 1) * s - 2 * p + k + op
  assert upsampling.transposed_conv_output_size(n, k, s, p, op) == expected_size
  rng = np.random.default_rng(n * 100 + k)
  x = rng.normal(size=(2, n, n + 1, 3)).astype(np.float32)
  kernel = rng.normal(size=(k, k, 3, 2)).astype(np.float32)
  out = upsampling.transposed_conv(jnp.asarray(x), jnp.asarray(kernel), s, p, op)
  reference = scatter_reference(x.astype(np.float64), kernel.astype(np.float64), s, p, op)
  assert out.shape == (2, expected_size, upsampling.transposed_conv_output_size(n + 1, k, s, p, op), 2)
  np.testing.assert_allclose(np.asarray(out), reference, atol=1e-4)


def test_kernel_equal_to_stride_path_has_the_dilated_forms_gradients():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 4, 5, 3)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(2, 2, 3, 4)), jnp.float32)
  cotangent = jnp.asarray(rng.normal(size=(2, 8, 10, 4)), jnp.float32)

  def dilated(x, kernel):  # the general form, forced (its output_padding 0 path with lhs dilation)
    return jax.lax.conv_general_dilated(x, kernel[::-1, ::-1], (1, 1), [(1, 1), (1, 1)], lhs_dilation=(2, 2),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  loss = lambda f: lambda x, k: jnp.sum(f(x, k) * cotangent)
  fast = jax.grad(loss(lambda x, k: upsampling.transposed_conv(x, k, 2)), argnums=(0, 1))(x, kernel)
  slow = jax.grad(loss(dilated), argnums=(0, 1))(x, kernel)
  for a, b in zip(fast, slow):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_transposed_conv_module_matches_pytorch():
  ref = np.load(FIXTURE, allow_pickle=False)
  module = upsampling.TransposedConv(4, 3, int(ref["tconv_stride"]), int(ref["tconv_padding"]),
                                     int(ref["tconv_output_padding"]))
  params = {"params": {"kernel": jnp.asarray(ref["tconv_kernel"]), "bias": jnp.asarray(ref["tconv_bias"])}}
  shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.asarray(ref["tconv_x"]))
  assert shapes["params"]["kernel"].shape == ref["tconv_kernel"].shape
  out = module.apply(params, jnp.asarray(ref["tconv_x"]))
  assert out.shape == ref["tconv_out"].shape
  np.testing.assert_allclose(np.asarray(out), ref["tconv_out"], atol=1e-5)


def test_output_padding_must_be_below_stride():
  with pytest.raises(ConfigError, match="output_padding"):
    upsampling.transposed_conv(jnp.zeros((1, 2, 2, 1)), jnp.zeros((3, 3, 1, 1)), 2, 1, 2)


def test_bilinear_kernel_values():
  # upsample_filt(4): k = 4, centre 1.5, taps 1 - |t - 1.5| / 2 = [0.25, 0.75, 0.75, 0.25].
  kernel = upsampling.bilinear_kernel(2, 3)
  taps = np.array([0.25, 0.75, 0.75, 0.25])
  assert kernel.shape == (4, 4, 3, 3)
  np.testing.assert_allclose(kernel[:, :, 1, 1], np.outer(taps, taps))
  assert np.all(kernel[:, :, 0, 1] == 0) and np.all(kernel[:, :, 2, 0] == 0)
  # odd factor 3: k = 5, centre 2, taps [1/3, 2/3, 1, 2/3, 1/3].
  np.testing.assert_allclose(upsampling.bilinear_kernel(3, 1)[2, :, 0, 0], [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])


def half_pixel_upsample(values, factor):
  """NumPy linear interpolation at half-pixel centres, (o + 0.5) / factor - 0.5."""
  coords = (np.arange(len(values) * factor) + 0.5) / factor - 0.5
  return np.interp(coords, np.arange(len(values)), values)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bilinear_transposed_conv_upsamples_constant_and_ramp(factor):
  size = 2 * factor - factor % 2
  n = 6
  rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
  ramp = 0.5 + 2.0 * rows - 1.5 * cols
  image = np.stack([np.full((n, n), 3.0), ramp], -1)[None].astype(np.float32)
  module = upsampling.TransposedConv(2, size, factor, factor // 2, use_bias=False,
                                     kernel_init=upsampling.bilinear_init(factor))
  out, _ = module.init_with_output(jax.random.key(0), jnp.asarray(image))
  out = np.asarray(out)[0]
  assert out.shape == (n * factor, n * factor, 2)
  inner = slice(factor, (n - 1) * factor)  # away from the borders, which see fewer inputs
  np.testing.assert_allclose(out[inner, inner, 0], 3.0, rtol=1e-6)
  expected = (0.5 + 2.0 * half_pixel_upsample(np.arange(n), factor)[:, None]
              - 1.5 * half_pixel_upsample(np.arange(n), factor)[None, :])
  np.testing.assert_allclose(out[inner, inner, 1], expected[inner, inner], atol=1e-5)
  assert out[0, 0, 0] < 3.0  # the border is darker: documented, not a bug


def test_bilinear_init_rejects_wrong_shape():
  with pytest.raises(ConfigError, match="kernel_size=4"):
    upsampling.TransposedConv(2, 3, 2, kernel_init=upsampling.bilinear_init(2)).init(
        jax.random.key(0), jnp.zeros((1, 3, 3, 2)))


def test_resize_conv_nearest_and_bilinear():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(1, 3, 4, 2)).astype(np.float32)
  identity = {"params": {"Conv_0": {"kernel": jnp.eye(2).reshape(1, 1, 2, 2), "bias": jnp.zeros(2)}}}
  nearest = upsampling.ResizeConv(2, 2, "nearest", 1).apply(identity, jnp.asarray(x))
  np.testing.assert_allclose(np.asarray(nearest), x.repeat(2, 1).repeat(2, 2), atol=1e-6)
  bilinear = np.asarray(upsampling.ResizeConv(2, 2, "bilinear", 1).apply(identity, jnp.asarray(x)))
  # separable half-pixel interpolation with clamped edges (np.interp clamps outside the sample range)
  rows = np.apply_along_axis(half_pixel_upsample, 1, x.astype(np.float64), 2)
  expected = np.apply_along_axis(half_pixel_upsample, 2, rows, 2)
  np.testing.assert_allclose(bilinear, expected, atol=1e-5)
  shapes = jax.eval_shape(upsampling.ResizeConv(5, (2, 3)).init_with_output, jax.random.key(0), jnp.zeros(x.shape))
  assert shapes[0].shape == (1, 6, 12, 5)
  with pytest.raises(ConfigError, match="resize method"):
    upsampling.resize(jnp.asarray(x), 2, "bicubic")


def pixel_shuffle_reference(x, r, order):
  """Loops over the documented formulas, channels-last: out[h*r + i, w*r + j, c] = in[h, w, source channel] with
  source c*r*r + i*r + j for PyTorch's nn.PixelShuffle and (i*r + j)*C + c for tf.nn.depth_to_space (DCR)."""
  n, h, w, depth = x.shape
  c = depth // (r * r)
  out = np.zeros((n, h * r, w * r, c), x.dtype)
  for i in range(r):
    for j in range(r):
      for ch in range(c):
        source = ch * r * r + i * r + j if order == "torch" else (i * r + j) * c + ch
        out[:, i::r, j::r, ch] = x[:, :, :, source]
  return out


@pytest.mark.parametrize("r,c", [(2, 3), (3, 2)])
def test_pixel_shuffle_orders(r, c):
  x = np.random.default_rng(r).normal(size=(2, 3, 4, c * r * r)).astype(np.float32)
  np.testing.assert_array_equal(np.asarray(upsampling.pixel_shuffle(jnp.asarray(x), r)),
                                pixel_shuffle_reference(x, r, "torch"))
  np.testing.assert_array_equal(np.asarray(upsampling.pixel_shuffle(jnp.asarray(x), r, "tensorflow")),
                                pixel_shuffle_reference(x, r, "tensorflow"))


def test_pixel_shuffle_matches_pytorch_and_checks_channels():
  ref = np.load(FIXTURE, allow_pickle=False)
  np.testing.assert_array_equal(np.asarray(upsampling.pixel_shuffle(jnp.asarray(ref["shuffle_x"]), 2)),
                                ref["shuffle_out"])
  with pytest.raises(ConfigError, match="divisible by 4"):
    upsampling.pixel_shuffle(jnp.zeros((1, 2, 2, 6)), 2)
