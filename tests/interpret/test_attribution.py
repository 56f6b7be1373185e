"""Layer probing and attribution on tiny models whose answers are known by hand (NumPy)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import models
from vision_jax.errors import ConfigError
from vision_jax.interpret import attribution, cam, probe


class TwoLayer(nn.Module):
  """x [N, 2, 2, 1] -> hidden = Dense(3)(flatten x) -> logits = Dense(2)(relu(hidden))."""

  @nn.compact
  def __call__(self, x):
    hidden = nn.Dense(3, name="hidden")(x.reshape(x.shape[0], -1))
    return nn.Dense(2, name="out")(jax.nn.relu(hidden))


@pytest.fixture(scope="module")
def two_layer():
  model = TwoLayer()
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 2, 2, 1)), jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), x)
  return model, variables, x


def test_probe_gradient_at_a_named_layer_is_the_next_layers_weights(two_layer):
  model, variables, x = two_layer
  logits, hidden, grads = probe.activation_and_gradient(model, variables, x, "hidden", jnp.array([0, 1]))
  w1, b1 = np.asarray(variables["params"]["hidden"]["kernel"]), np.asarray(variables["params"]["hidden"]["bias"])
  w2 = np.asarray(variables["params"]["out"]["kernel"])
  want_hidden = np.asarray(x).reshape(2, 4) @ w1 + b1
  np.testing.assert_allclose(np.asarray(hidden), want_hidden, rtol=1e-5, atol=1e-6)
  want_grads = np.stack([w2[:, t] * (want_hidden[n] > 0) for n, t in enumerate([0, 1])])
  np.testing.assert_allclose(np.asarray(grads), want_grads, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(logits), np.asarray(model.apply(variables, x)), rtol=1e-6)


def test_unknown_layer_names_the_known_ones(two_layer):
  model, variables, x = two_layer
  with pytest.raises(ConfigError, match="pick one of"):
    probe.probe(model, variables, x, "no_such_layer")


def test_occlusion_of_a_linear_model_matches_numpy():
  weights = np.random.default_rng(1).normal(size=(6, 6, 2)).astype(np.float32)
  images = np.random.default_rng(2).uniform(size=(1, 6, 6, 2)).astype(np.float32)
  apply_fn = lambda x: jnp.stack([jnp.sum(x * weights, axis=(1, 2, 3)), jnp.zeros(x.shape[0])], -1)  # noqa: E731
  got = np.asarray(attribution.occlusion(apply_fn, jnp.asarray(images), jnp.array([0]), window=3, stride=2))
  total, count = np.zeros((6, 6)), np.zeros((6, 6))
  for r in (0, 2):  # windows that fit: rows/columns 0..2 and 2..4; the last row and column are never covered
    for c in (0, 2):
      drop = np.sum((images[0] * weights)[r:r + 3, c:c + 3])
      total[r:r + 3, c:c + 3] += drop
      count[r:r + 3, c:c + 3] += 1
  want = np.where(count > 0, total / np.maximum(count, 1), 0.0)
  np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)


def test_integrated_gradients_is_exact_for_a_quadratic_and_complete(two_layer):
  x = jnp.asarray(np.random.default_rng(3).uniform(size=(1, 3, 3, 1)), jnp.float32)
  apply_fn = lambda v: jnp.stack([jnp.sum(v**2, axis=(1, 2, 3)), jnp.zeros(v.shape[0])], -1)  # noqa: E731
  got = attribution.integrated_gradients(apply_fn, x, jnp.array([0]), steps=5)
  np.testing.assert_allclose(np.asarray(got), np.asarray(x)**2, rtol=1e-5)  # trapezoid rule is exact for linear grads
  model, variables, images = two_layer
  fn = lambda v: model.apply(variables, v)  # noqa: E731
  ig = attribution.integrated_gradients(fn, images, jnp.array([0, 1]), steps=256)
  gap = np.asarray(fn(images))[[0, 1], [0, 1]] - np.asarray(fn(jnp.zeros_like(images)))[[0, 1], [0, 1]]
  np.testing.assert_allclose(np.asarray(ig).sum(axis=(1, 2, 3)), gap, rtol=2e-2, atol=1e-3)


def test_smoothgrad_with_zero_noise_is_the_squared_gradient(two_layer):
  model, variables, x = two_layer
  fn = lambda v: model.apply(variables, v)  # noqa: E731
  grads = attribution.input_gradients(fn, x, jnp.array([1, 0]))
  got = attribution.smoothgrad(fn, x, jnp.array([1, 0]), noise=jnp.zeros((3,) + x.shape))
  np.testing.assert_allclose(np.asarray(got), np.asarray(grads)**2, rtol=1e-6)
  noise = attribution.smoothgrad_noise(jax.random.PRNGKey(0), x, 400, 0.15)
  spread = np.asarray(x).max(axis=(1, 2, 3)) - np.asarray(x).min(axis=(1, 2, 3))
  np.testing.assert_allclose(np.asarray(noise).std(axis=(0, 2, 3, 4)), 0.15 * spread, rtol=0.1)


def test_guided_model_keeps_the_forward_pass_and_refuses_non_relu_models():
  model = models.get("simple_cnn", num_classes=3, widths=(2, 2), hidden_units=4)
  x = jnp.asarray(np.random.default_rng(4).normal(size=(1, 12, 12, 1)), jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), x)
  guided = attribution.guided_model(model)
  np.testing.assert_allclose(np.asarray(guided.apply(variables, x)), np.asarray(model.apply(variables, x)), rtol=1e-6)
  with pytest.raises(ConfigError, match="ReLU"):
    attribution.guided_model(models.get("mobilenet_v2", num_classes=3))


def test_cam_weights_by_hand():
  act = np.zeros((1, 2, 1, 2), np.float32)
  act[0, :, 0, 0] = [1.0, 3.0]
  act[0, :, 0, 1] = [2.0, 2.0]
  grad = np.zeros_like(act)
  grad[0, :, 0, 0] = [0.5, -1.0]
  grad[0, :, 0, 1] = [1.0, 0.0]
  np.testing.assert_allclose(np.asarray(cam.cam_weights(act, grad, "gradcam")), [[-0.25, 0.5]])
  # Grad-CAM++ channel 0: only g = 0.5 > 0 counts: a = 0.25 / (0.5 + 4 * 0.125 + 1e-6); channel 1: a = 1 / (2 + 4).
  want = [[0.5 * 0.25 / (0.5 + 0.5 + 1e-6), 1.0 * 1.0 / (2.0 + 4.0 + 1e-6)]]
  np.testing.assert_allclose(np.asarray(cam.cam_weights(act, grad, "gradcam++")), want, rtol=1e-5)
