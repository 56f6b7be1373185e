"""The conv_vjp forms equal XLA's own convolution and its gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.backends.cpu import conv_vjp


def _reference(x, w, strides, padding):
  return jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("size,kernel,strides,padding", [
    (8, 3, (2, 2), ((1, 1), (1, 1))),   # ResNet's stride-2 3x3
    (8, 1, (2, 2), ((0, 0), (0, 0))),   # its 1x1 projection shortcut: odd pixels get no gradient
    (12, 3, (3, 3), ((1, 1), (1, 1))),
    (8, 3, (2, 2), ((0, 1), (0, 1))),   # TensorFlow "SAME" for stride 2
    (9, 3, (2, 2), ((1, 1), (1, 1))),   # odd size: falls back to the default input gradient
    (8, 3, (2, 1), ((1, 2), (2, 1))),   # unequal strides and paddings
    (10, 7, (2, 2), ((3, 3), (3, 3))),  # the ResNet-50 stem: XLA's own gradients
])
@pytest.mark.parametrize("channels", [16, 3])  # 16 takes the phase/tap gradients, 3 XLA's own
def test_value_and_gradients_match_lax(size, kernel, strides, padding, channels):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, size, size, channels)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, channels, 5)), jnp.float32)
  ours = conv_vjp.conv2d(x, w, strides, padding)
  ref = _reference(x, w, strides, padding)
  np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
  dy = jnp.asarray(rng.normal(size=ref.shape), jnp.float32)
  ours_dx, ours_dw = jax.vjp(lambda a, b: conv_vjp.conv2d(a, b, strides, padding), x, w)[1](dy)
  ref_dx, ref_dw = jax.vjp(lambda a, b: _reference(a, b, strides, padding), x, w)[1](dy)
  assert float(jnp.abs(ref_dx).max()) > 1.0  # the gradient is not trivially zero
  np.testing.assert_allclose(ours_dx, ref_dx, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ours_dw, ref_dw, rtol=1e-5, atol=1e-5)


def test_stride_one_is_the_plain_convolution():
  x, w = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 4))
  np.testing.assert_array_equal(conv_vjp.conv2d(x, w, (1, 1), ((1, 1), (1, 1))),
                                _reference(x, w, (1, 1), ((1, 1), (1, 1))))


def test_strided_gradient_has_no_dilated_convolution():
  x, w = jnp.ones((2, 8, 8, 16)), jnp.ones((3, 3, 16, 32))
  grads = jax.grad(lambda a, b: jnp.sum(conv_vjp.conv2d(a, b, (2, 2), ((1, 1), (1, 1)))), argnums=(0, 1))
  text = str(jax.make_jaxpr(grads)(x, w))
  assert "lhs_dilation=(2, 2)" not in text
  reference = jax.grad(lambda a, b: jnp.sum(_reference(a, b, (2, 2), ((1, 1), (1, 1)))), argnums=(0, 1))
  assert "lhs_dilation=(2, 2)" in str(jax.make_jaxpr(reference)(x, w))  # what the phase form avoids


@pytest.mark.parametrize("channels,kernel,padding", [
    (1, 5, ((2, 2), (2, 2))),  # LeNet-5's first layer on 28x28 digits ("SAME")
    (1, 5, ((0, 0), (0, 0))),  # the classic form on 32x32
    (3, 3, ((1, 1), (1, 1))),
    (3, 4, ((1, 2), (0, 3))),
])
def test_few_channel_form_matches_lax(channels, kernel, padding):
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(2, 9, 11, channels)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, channels, 6)), jnp.float32)
  ours = conv_vjp.few_channel_conv2d(x, w, padding)
  ref = _reference(x, w, (1, 1), padding)
  assert ours.shape == ref.shape
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
  dy = jnp.asarray(rng.normal(size=ref.shape), jnp.float32)
  ours_grads = jax.vjp(lambda a, b: conv_vjp.few_channel_conv2d(a, b, padding), x, w)[1](dy)
  ref_grads = jax.vjp(lambda a, b: _reference(a, b, (1, 1), padding), x, w)[1](dy)
  for a, b in zip(ours_grads, ref_grads):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,channels,kernel,padding", [
    (14, 6, 5, ((0, 0), (0, 0))),   # LeNet-5's second layer
    (9, 3, 3, ((1, 1), (1, 1))),
    (8, 4, 3, ((0, 2), (1, 0))),
])
def test_patch_input_gradient_matches_lax(size, channels, kernel, padding):
  assert conv_vjp.input_grad_form((2, size, size, channels), (kernel, kernel, channels, 5), (1, 1),
                                  (size, size)) == "patches"
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(2, size, size, channels)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, channels, 5)), jnp.float32)
  ref = _reference(x, w, (1, 1), padding)
  np.testing.assert_allclose(conv_vjp.conv2d(x, w, (1, 1), padding), ref, rtol=1e-6, atol=1e-6)
  dy = jnp.asarray(rng.normal(size=ref.shape), jnp.float32)
  ours = jax.vjp(lambda a, b: conv_vjp.conv2d(a, b, (1, 1), padding), x, w)[1](dy)
  refs = jax.vjp(lambda a, b: _reference(a, b, (1, 1), padding), x, w)[1](dy)
  assert float(jnp.abs(refs[0]).max()) > 1.0
  for a, b in zip(ours, refs):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_input_grad_form_rule():
  form = conv_vjp.input_grad_form
  assert form((8, 32, 32, 64), (3, 3, 64, 128), (2, 2), (16, 16)) == "phase"
  assert form((8, 32, 32, 8), (3, 3, 8, 16), (2, 2), (16, 16)) is None  # too few channels for phases
  assert form((8, 32, 32, 64), (1, 1, 64, 128), (2, 2), (16, 16)) is None  # 1x1
  assert form((8, 14, 14, 6), (5, 5, 6, 16), (1, 1), (10, 10)) == "patches"
  assert form((8, 32, 32, 8), (3, 3, 8, 16), (1, 1), (32, 32)) is None  # large map: overlap-add loses
  assert form((8, 14, 14, 1), (5, 5, 1, 16), (1, 1), (10, 10)) is None  # 1 channel: no input gradient needed
  assert form((8, 14, 14, 32), (3, 3, 32, 16), (1, 1), (14, 14)) is None


@pytest.mark.parametrize("size,kernel,padding,strides", [
    (5, 5, ((0, 0), (0, 0)), (1, 1)),  # LeNet-5's C5
    (3, 5, ((1, 1), (2, 0)), (2, 3)),  # padded, strided: still one output pixel
])
def test_full_window_form_matches_lax(size, kernel, padding, strides):
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(3, size, size, 4)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, 4, 7)), jnp.float32)
  ref = _reference(x, w, strides, padding)
  assert ref.shape == (3, 1, 1, 7)
  np.testing.assert_allclose(conv_vjp.full_window_conv2d(x, w, padding), ref, rtol=1e-5, atol=1e-5)
  dy = jnp.asarray(rng.normal(size=ref.shape), jnp.float32)
  ours = jax.vjp(lambda a, b: conv_vjp.full_window_conv2d(a, b, padding), x, w)[1](dy)
  refs = jax.vjp(lambda a, b: _reference(a, b, strides, padding), x, w)[1](dy)
  for a, b in zip(ours, refs):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_full_window_form_rejects_a_smaller_kernel():
  with pytest.raises(ValueError, match="cover the padded input"):
    conv_vjp.full_window_conv2d(jnp.ones((1, 6, 6, 2)), jnp.ones((5, 5, 2, 3)), ((0, 0), (0, 0)))
