"""Pixel losses and the content loss on a network's conv features, against NumPy."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.errors import ConfigError
from vision_jax.losses import perceptual


class TwoConvs(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(3, (3, 3), name="first")(x))
    x = nn.Conv(2, (1, 1), name="second")(x)
    return nn.Dense(4)(x.reshape(x.shape[0], -1))


def test_pixel_losses_match_numpy():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(3, 4, 4, 2)).astype(np.float32), rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
  np.testing.assert_allclose(perceptual.pixel_loss(a, b, "l1"), np.abs(a - b).reshape(3, -1).mean(1), rtol=1e-6)
  np.testing.assert_allclose(perceptual.pixel_loss(a, b, "l2"), ((a - b) ** 2).reshape(3, -1).mean(1), rtol=1e-6)
  with pytest.raises(ConfigError):
    perceptual.pixel_loss(a, b, "l3")


def test_conv_features_are_the_conv_outputs_in_order_and_content_loss_matches_numpy():
  module = TwoConvs()
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 1))
  y = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 5, 1))
  variables = module.init(jax.random.PRNGKey(2), x)
  params = variables["params"]

  def by_hand(images):  # the two convolutions applied separately: lax conv with SAME padding
    first = jax.lax.conv_general_dilated(images, params["first"]["kernel"], (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC")) + params["first"]["bias"]
    second = jnp.einsum("nhwc,cd->nhwd", jax.nn.relu(first), params["second"]["kernel"][0, 0])
    second = second + params["second"]["bias"]
    return [np.asarray(first), np.asarray(second)]

  features_x = perceptual.conv_features(module, variables, x)
  features_y = perceptual.conv_features(module, variables, y)
  assert [f.shape for f in features_x] == [(2, 5, 5, 3), (2, 5, 5, 2)]
  for got, expected in zip(features_x, by_hand(x)):
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
  hand_x, hand_y = by_hand(x), by_hand(y)
  expected = sum(((a - b) ** 2).reshape(2, -1).mean(1) for a, b in zip(hand_x, hand_y)) / 2
  np.testing.assert_allclose(np.asarray(perceptual.content_loss(features_x, features_y)), expected, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(perceptual.content_loss(features_x, features_x)), 0, atol=1e-7)
