"""Test-time augmentation views against explicit NumPy slices, PIL resizing and a NumPy probability average."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from vision_jax.errors import ConfigError
from vision_jax.evaluation import tta

IMAGES = np.random.default_rng(0).integers(0, 256, (3, 7, 9, 2), dtype=np.uint8)


def _numpy_five(x, ch, cw):
  h, w = x.shape[1:3]
  t, l = (h - ch) // 2, (w - cw) // 2
  return [x[:, t:t + ch, l:l + cw], x[:, :ch, :cw], x[:, :ch, w - cw:], x[:, h - ch:, :cw], x[:, h - ch:, w - cw:]]


def test_ten_crop_is_five_slices_then_their_mirrors():
  crops = np.asarray(tta.ten_crop(jnp.asarray(IMAGES), 4, 5))
  assert crops.shape == (10, 3, 4, 5, 2)
  expected = _numpy_five(IMAGES, 4, 5)
  for i, crop in enumerate(expected):
    np.testing.assert_array_equal(crops[i], crop)
    np.testing.assert_array_equal(crops[5 + i], crop[:, :, ::-1])  # left-right mirror


def test_padded_views_are_shifts_of_the_image():
  views = np.asarray(tta.views(jnp.asarray(IMAGES), "ten_crop", pad=2))
  assert views.shape == (10, 3, 7, 9, 2) and views.dtype == np.uint8
  padded = np.pad(IMAGES, ((0, 0), (2, 2), (2, 2), (0, 0)))
  np.testing.assert_array_equal(views[0], IMAGES)  # the centre crop of the padded image is the image
  np.testing.assert_array_equal(views[4], padded[:, 4:, 4:])  # bottom-right: shifted up-left by 2
  np.testing.assert_array_equal(views[6], padded[:, :7, :9][:, :, ::-1])  # mirrored top-left


@pytest.mark.parametrize("mode,count", [("none", 1), ("center", 1), ("flip", 2), ("five_crop", 5), ("ten_crop", 10)])
def test_view_counts_and_order(mode, count):
  views = np.asarray(tta.views(jnp.asarray(IMAGES), mode, pad=1))
  assert views.shape == (count, 3, 7, 9, 2)
  if mode == "flip":
    np.testing.assert_array_equal(views[1], IMAGES[:, :, ::-1])


def test_smaller_crops_are_resized_back_bilinearly():
  views = np.asarray(tta.views(jnp.asarray(IMAGES), "five_crop", crop=5))
  assert views.shape == (5, 3, 7, 9, 2) and views.dtype == np.float32
  for i, crop in enumerate(_numpy_five(IMAGES, 5, 5)):
    for n in range(3):
      for c in range(2):
        reference = Image.fromarray(crop[n, :, :, c].astype(np.float32), mode="F").resize((9, 7), Image.BILINEAR)
        np.testing.assert_allclose(views[i, n, :, :, c], np.asarray(reference), atol=1e-3)


def test_average_probabilities_matches_numpy():
  weights = np.random.default_rng(1).normal(size=(7 * 9 * 2, 4)).astype(np.float32) / 300

  def logits_fn(images):
    return images.reshape(images.shape[0], -1).astype(jnp.float32) @ weights

  got = np.asarray(jax.jit(lambda x: tta.average_probabilities(logits_fn, x, "ten_crop", pad=1))(IMAGES))
  padded = np.pad(IMAGES, ((0, 0), (1, 1), (1, 1), (0, 0))).astype(np.float64)
  views = _numpy_five(padded, 7, 9)
  views += [v[:, :, ::-1] for v in views]
  probs = []
  for view in views:
    logits = view.reshape(3, -1) @ weights.astype(np.float64)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    probs.append(e / e.sum(-1, keepdims=True))
  np.testing.assert_allclose(got, np.mean(probs, axis=0), rtol=1e-4, atol=1e-6)


def test_bad_modes_and_crops_are_config_errors():
  with pytest.raises(ConfigError, match="unknown test-time augmentation eval.tta='twelve_crop'"):
    tta.views(jnp.asarray(IMAGES), "twelve_crop")
  with pytest.raises(ConfigError, match="eval.tta_crop=12 exceeds the 9x11 padded images"):
    tta.views(jnp.asarray(IMAGES), "ten_crop", pad=1, crop=12)
