"""The transposed convolution with dual-convolution gradients equals `lax.conv_transpose`, checked against float64
autodiff of `lax.conv_transpose`, and the train-step rewrite routes Flax's ConvTranspose layers through it."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from vision_jax.backends.cpu import conv_transpose_vjp
from vision_jax.backends.cpu import rewrites as xla_cpu

_DIMS = ("NHWC", "HWIO", "NHWC")

# (input [N, H, W, C], kernel [kh, kw, C, O], strides, padding as lax.conv_transpose takes it)
_CASES = [((2, 7, 7, 6), (4, 4, 6, 5), (2, 2), "SAME"),  # DCGAN's 4x4 stride-2 upsampling
          ((2, 6, 5, 4), (2, 2, 4, 3), (2, 2), "VALID"),  # U-Net's 2x2 stride-2 upsampling
          ((2, 5, 6, 3), (3, 3, 3, 4), (2, 3), "SAME"),
          ((1, 4, 4, 2), (5, 3, 2, 3), (3, 2), "VALID"),
          ((2, 5, 5, 3), (5, 5, 3, 2), (2, 2), ((1, 2), (0, 3)))]  # asymmetric explicit padding


@pytest.mark.parametrize("x_shape,w_shape,strides,padding", _CASES)
def test_value_and_gradients_match_float64_lax(x_shape, w_shape, strides, padding):
  rng = np.random.default_rng(0)
  x, w = rng.normal(size=x_shape).astype(np.float32), rng.normal(size=w_shape).astype(np.float32)
  explicit = conv_transpose_vjp.conv_transpose_padding(x_shape, w_shape, strides, padding)
  ours_fn = lambda a, b: conv_transpose_vjp.conv_transpose2d(a, b, strides, explicit)
  y, vjp = jax.vjp(ours_fn, jnp.asarray(x), jnp.asarray(w))
  dy = rng.normal(size=y.shape).astype(np.float32)
  dx, dw = vjp(jnp.asarray(dy))
  with jax.enable_x64(True):
    reference_fn = lambda a, b: lax.conv_transpose(a, b, strides, padding, dimension_numbers=_DIMS)
    y64, vjp64 = jax.vjp(reference_fn, jnp.asarray(x, jnp.float64), jnp.asarray(w, jnp.float64))
    dx64, dw64 = (np.asarray(g) for g in vjp64(jnp.asarray(dy, jnp.float64)))
    y64 = np.asarray(y64)
  assert y.shape == y64.shape and dx.dtype == dw.dtype == np.float32
  for got, want in ((y, y64), (dx, dx64), (dw, dw64)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_padding_beyond_the_kernel_is_left_to_lax():
  # The dual convolution would need negative padding: the caller keeps lax.conv_transpose.
  assert conv_transpose_vjp.conv_transpose_padding((1, 4, 4, 1), (3, 3, 1, 1), (2, 2), ((3, 0), (0, 0))) is None
  assert conv_transpose_vjp.dual_padding((4, 4), ((2, 1), (3, 0))) == ((1, 2), (0, 3))


class _UpsamplingNet(nn.Module):
  """The ConvTranspose variants the rewrite takes and those it leaves to Flax."""

  @nn.compact
  def __call__(self, x):
    x = nn.ConvTranspose(6, (4, 4), (2, 2), padding="SAME", name="dcgan")(x)  # rewritten, with bias
    x = nn.ConvTranspose(5, (2, 2), (2, 2), padding="VALID", use_bias=False, name="unet")(nn.relu(x))  # rewritten
    x = nn.ConvTranspose(4, (3, 3), (1, 1), padding="SAME", name="stride1")(x)  # stride 1: Flax's
    x = nn.ConvTranspose(4, (3, 3), (2, 2), padding="SAME", transpose_kernel=True, name="transposed")(x)  # Flax's
    x = nn.ConvTranspose(3, (3, 3), (2, 2), padding="SAME", kernel_dilation=2, name="dilated")(x)  # Flax's
    return nn.Dense(2)(x.mean(axis=(1, 2)))


def test_rewrite_takes_strided_conv_transposes_and_matches_flax():
  model, images = _UpsamplingNet(), jax.random.normal(jax.random.PRNGKey(1), (2, 3, 3, 2))
  variables = model.init(jax.random.PRNGKey(0), images)

  def loss_and_grads(rewrites):
    def loss(params):
      with xla_cpu.train_step_rewrites(rewrites):
        return jnp.sum(jnp.sin(model.apply({"params": params}, images)))
    jaxpr = str(jax.make_jaxpr(jax.grad(loss))(variables["params"]))
    return jax.jit(jax.value_and_grad(loss))(variables["params"]), jaxpr

  (ours, ours_grads), ours_jaxpr = loss_and_grads(True)
  (plain, plain_grads), plain_jaxpr = loss_and_grads(False)
  np.testing.assert_allclose(ours, plain, rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree_util.tree_leaves(ours_grads), jax.tree_util.tree_leaves(plain_grads)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
  # Two layers go through the custom gradient (the bias add of the first one through channel_stats' as well).
  assert ours_jaxpr.count("conv_transpose2d") == 2 and "conv_transpose2d" not in plain_jaxpr
