"""The op registry and pipelines: parsing, the old import path, value ops, determinism, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import op_spec
from vision_jax.data import augment
from vision_jax.errors import ConfigError, DataError

KEY = jax.random.PRNGKey(0)
ISSUE_OPS = {"flip_lr", "flip_ud", "pad_crop", "random_resized_crop", "rotate", "shear", "zoom", "translate",
             "brightness", "contrast", "saturation", "hue", "lighting", "cutout", "mixup", "cutmix"}


def _images(n=3, h=6, w=5, c=2):
  return jnp.asarray(np.random.default_rng(0).uniform(size=(n, h, w, c)), jnp.float32)


def test_every_op_is_registered_and_reachable_from_the_old_import_path():
  assert ISSUE_OPS <= set(augment.names())
  assert op_spec.parse_pipeline("to_float| rotate(degrees=8, fill=0.5) |") == [
      ("to_float", {}), ("rotate", {"degrees": 8, "fill": 0.5})]
  assert op_spec.parse_op("random_resized_crop(scale=(0.5, 1.0), size=[4, 5])") == (
      "random_resized_crop", {"scale": (0.5, 1.0), "size": [4, 5]})


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


def test_pipelines_are_jittable_and_reproducible():
  pipeline = augment.build("pad_crop(pad=2)|flip_lr|rotate(degrees=10)|cutout(size=3)")
  images = _images(h=8, w=8)
  a = jax.jit(pipeline)(KEY, images)
  np.testing.assert_array_equal(a, pipeline(KEY, images))
  assert not np.array_equal(a, pipeline(jax.random.PRNGKey(1), images))
  assert augment.build("")(KEY, images) is images


def test_unknown_op_bad_arguments_and_bad_shapes_are_user_errors():
  with pytest.raises(ConfigError, match="unknown image op 'blur'"):
    augment.build("to_float|blur(sigma=1)")
  with pytest.raises(ConfigError, match="does not take"):
    augment.build("rotate(angle=3)")
  with pytest.raises(ConfigError, match="cannot parse op"):
    augment.build("rotate(degrees=)")
  for spec in ("flip_lr(p=2)", "shear(x=90)", "zoom(scale=(2, 1))", "rotate(interpolation='cubic')",
               "random_resized_crop(scale=(0.5, 2.0))"):
    with pytest.raises(ConfigError):
      augment.build(spec)
  with pytest.raises(DataError, match=r"batch \[N, H, W, C\]"):
    augment.build("flip_lr")(KEY, jnp.zeros((4, 4, 1)))
  with pytest.raises(DataError, match=r"boxes must be \[N, M, 4\]"):
    augment.build("flip_lr").apply(KEY, jnp.zeros((2, 4, 4, 1)), boxes=jnp.zeros((2, 4)))
