"""Colour ops against NumPy and colorsys definitions; grayscale behaviour and PCA lighting."""

import colorsys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.data import augment
from vision_jax.data.augment import color
from vision_jax.errors import ConfigError, DataError

KEY = jax.random.PRNGKey(0)
LUMA = np.array([0.299, 0.587, 0.114])


def _rgb(n=3, h=4, w=5, seed=0):
  return np.random.default_rng(seed).uniform(size=(n, h, w, 3))


def test_brightness_contrast_saturation_match_numpy():
  x = _rgb()
  f = np.array([0.5, 1.0, 1.7])
  images, factors = jnp.asarray(x, jnp.float32), jnp.asarray(f, jnp.float32)
  np.testing.assert_allclose(color.adjust_brightness(images, factors), np.clip(x * f[:, None, None, None], 0, 1),
                             atol=1e-6)
  gray = x @ LUMA
  mean = gray.mean(axis=(1, 2))[:, None, None, None]
  np.testing.assert_allclose(color.adjust_contrast(images, factors),
                             np.clip(mean + f[:, None, None, None] * (x - mean), 0, 1), atol=1e-6)
  np.testing.assert_allclose(color.adjust_saturation(images, factors),
                             np.clip(gray[..., None] + f[:, None, None, None] * (x - gray[..., None]), 0, 1), atol=1e-6)


def test_hsv_round_trip_and_hue_shift_match_colorsys():
  pixels = np.concatenate([_rgb(1, 8, 8)[0].reshape(-1, 3),
                           [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]])
  hsv = np.asarray(color.rgb_to_hsv(jnp.asarray(pixels, jnp.float32)))
  np.testing.assert_allclose(hsv, [colorsys.rgb_to_hsv(*p) for p in pixels], atol=1e-5)
  np.testing.assert_allclose(color.hsv_to_rgb(jnp.asarray(hsv)), pixels, atol=1e-5)
  x = _rgb(n=2)
  deltas = np.array([0.2, -0.35])
  out = np.asarray(color.adjust_hue(jnp.asarray(x, jnp.float32), jnp.asarray(deltas, jnp.float32)))
  for i, delta in enumerate(deltas):
    for p, q in zip(x[i].reshape(-1, 3), out[i].reshape(-1, 3)):
      h, s, v = colorsys.rgb_to_hsv(*p)
      np.testing.assert_allclose(q, colorsys.hsv_to_rgb((h + delta) % 1.0, s, v), atol=1e-5)


def test_zero_ranges_are_identities_and_factors_stay_in_range():
  x = jnp.asarray(_rgb(n=8) * 0.5, jnp.float32)  # below 0.5 so that brightness never clips
  same = augment.build("brightness(factor=0)|contrast(factor=0)|saturation(factor=0)|hue(delta=0)|lighting(std=0)")
  np.testing.assert_allclose(same(KEY, x), x, atol=1e-6)
  ratio = np.asarray(augment.build("brightness(factor=0.5)")(KEY, x)) / np.asarray(x)
  per_image = ratio.reshape(8, -1)
  np.testing.assert_allclose(per_image, per_image[:, :1].repeat(per_image.shape[1], 1), rtol=1e-5)
  assert np.all((per_image >= 0.5 - 1e-6) & (per_image <= 1.5 + 1e-6)) and np.ptp(per_image[:, 0]) > 0


def test_grayscale_images_keep_saturation_and_hue_and_refuse_lighting():
  gray = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 4, 4, 1)), jnp.float32)
  np.testing.assert_array_equal(augment.build("saturation(factor=0.9)|hue(delta=0.5)")(KEY, gray), gray)
  with pytest.raises(DataError, match="lighting needs RGB"):
    augment.build("lighting")(KEY, gray)
  with pytest.raises(ConfigError, match="put to_float before it"):
    augment.build("brightness")(KEY, jnp.zeros((1, 2, 2, 1), jnp.uint8))


def test_pca_lighting_matches_the_alexnet_formula():
  x = _rgb(n=2)
  alphas = np.array([[0.1, -0.2, 0.05], [-0.3, 0.0, 0.2]])
  eigval, eigvec = np.array(color.IMAGENET_EIGVAL), np.array(color.IMAGENET_EIGVEC)
  out = color.pca_lighting(jnp.asarray(x, jnp.float32), jnp.asarray(alphas, jnp.float32))
  # AlexNet Section 4.1: add [p1, p2, p3] [a1 l1, a2 l2, a3 l3]^T to every RGB pixel.
  ref = x + np.stack([eigvec @ (a * eigval) for a in alphas])[:, None, None, :]
  np.testing.assert_allclose(out, ref, atol=1e-6)
  # The shipped eigenvectors are orthonormal columns, as eigenvectors of a covariance must be.
  np.testing.assert_allclose(eigvec.T @ eigvec, np.eye(3), atol=2e-3)


def test_colour_ops_are_deterministic_by_seed_under_jit():
  x = jnp.asarray(_rgb(n=4), jnp.float32)
  pipeline = jax.jit(augment.build("brightness|contrast|saturation|hue|lighting"))
  np.testing.assert_array_equal(pipeline(KEY, x), pipeline(KEY, x))
  assert not np.allclose(pipeline(KEY, x), pipeline(jax.random.PRNGKey(1), x))


def test_bad_colour_arguments_are_config_errors():
  for spec in ("brightness(factor=-1)", "hue(delta=0.7)", "lighting(std=-0.1)", "lighting(eigval=(1, 2))"):
    with pytest.raises(ConfigError):
      augment.build(spec)
