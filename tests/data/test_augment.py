"""Image ops: exact results against NumPy definitions and identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.data import augment
from vision_jax.errors import ConfigError

KEY = jax.random.PRNGKey(0)


def _images(n=3, h=6, w=5, c=2):
  return jnp.asarray(np.random.default_rng(0).uniform(size=(n, h, w, c)), jnp.float32)


def test_rotation_by_quarter_turns_matches_rot90():
  images = _images(h=5, w=5)
  angles = jnp.array([np.pi / 2, np.pi, 0.0])
  out = np.asarray(augment.rotate_images(images, angles))
  ref = [np.rot90(np.asarray(images[0]), 1), np.rot90(np.asarray(images[1]), 2), np.asarray(images[2])]
  np.testing.assert_allclose(out, np.stack(ref), atol=1e-5)


def test_rotation_by_zero_degrees_range_is_identity():
  images = _images()
  np.testing.assert_allclose(augment.build("rotate(degrees=0)")(KEY, images), images, atol=1e-6)


def test_flip_always_and_never():
  images = _images()
  np.testing.assert_array_equal(augment.build("flip_lr(p=1.0)")(KEY, images), np.asarray(images)[:, :, ::-1])
  np.testing.assert_array_equal(augment.build("flip_lr(p=0.0)")(KEY, images), images)
  twice = augment.build("flip_lr(p=1.0)|flip_lr(p=1.0)")(KEY, images)
  np.testing.assert_array_equal(twice, images)


def test_pad_crop_windows_are_shifted_copies():
  images = _images(n=8, h=6, w=6, c=1)
  out = np.asarray(augment.build("pad_crop(pad=2)")(KEY, images))
  padded = np.pad(np.asarray(images), ((0, 0), (2, 2), (2, 2), (0, 0)))
  for i in range(8):
    windows = [padded[i, dy:dy + 6, dx:dx + 6] for dy in range(5) for dx in range(5)]
    assert any(np.array_equal(out[i], w) for w in windows)
  np.testing.assert_array_equal(augment.build("pad_crop(pad=0)")(KEY, images), images)


def test_to_float_pad_and_normalize_values():
  raw = jnp.full((1, 28, 28, 1), 255, jnp.uint8)
  out = np.asarray(augment.build("to_float|pad(to=32)|normalize(mean=0.5, std=0.25)")(KEY, raw))
  assert out.shape == (1, 32, 32, 1)
  assert out[0, 0, 0, 0] == pytest.approx((0.0 - 0.5) / 0.25)
  assert out[0, 2, 2, 0] == pytest.approx((1.0 - 0.5) / 0.25)


def test_ops_are_jittable_and_reproducible():
  pipeline = augment.build("pad_crop(pad=2)|flip_lr|rotate(degrees=10)")
  images = _images(h=8, w=8)
  a = jax.jit(pipeline)(KEY, images)
  b = jax.jit(pipeline)(KEY, images)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, pipeline(jax.random.PRNGKey(1), images))


def test_unknown_op_and_bad_arguments_are_config_errors():
  with pytest.raises(ConfigError, match="unknown image op 'blur'"):
    augment.build("to_float|blur(sigma=1)")
  with pytest.raises(ConfigError, match="does not take"):
    augment.build("rotate(angle=3)")
  with pytest.raises(ConfigError, match="cannot parse op"):
    augment.build("rotate(degrees=)")
