"""Test-time augmentation (TTA): several views of each test image, their class probabilities averaged.

The views are crops of the (optionally zero-padded) image, each brought back to the image's own size so the
model sees its usual input shape:

  none        the image itself
  center      the centre crop
  flip        the centre crop and its left-right mirror
  five_crop   the centre crop and the four corner crops
  ten_crop    the five crops and their mirrors (Krizhevsky et al., 2012, "ImageNet Classification with Deep
              Convolutional Neural Networks", Sec. 4.1: "five 224x224 patches ... as well as their horizontal
              reflections (hence ten patches in all)")

Two ways to make crops fit the model: pad the image by `pad` pixels a side and crop its original size (the
views are then shifts by up to `pad` pixels, matching a `pad_crop(pad=...)` training augmentation), or crop
`crop` < H pixels and resize the crop back to H x W (bilinear).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError

MODES = ("none", "center", "flip", "five_crop", "ten_crop")


def crop_corners(height: int, width: int, crop_h: int, crop_w: int) -> list[tuple[int, int]]:
  """(top, left) of the centre, top-left, top-right, bottom-left and bottom-right crops, in that order."""
  bottom, right = height - crop_h, width - crop_w
  return [(bottom // 2, right // 2), (0, 0), (0, right), (bottom, 0), (bottom, right)]


def five_crop(images: jax.Array, crop_h: int, crop_w: int) -> jax.Array:
  """The centre and four corner crops of every image.

  Args:
    images: [N, H, W, C].
    crop_h: crop height (<= H).
    crop_w: crop width (<= W).

  Returns:
    [5, N, crop_h, crop_w, C] in the order centre, top-left, top-right, bottom-left, bottom-right.
  """
  _, height, width, _ = images.shape
  return jnp.stack([images[:, top:top + crop_h, left:left + crop_w]
                    for top, left in crop_corners(height, width, crop_h, crop_w)])


def ten_crop(images: jax.Array, crop_h: int, crop_w: int) -> jax.Array:
  """`five_crop` followed by the left-right mirror of each of the five crops: [10, N, crop_h, crop_w, C]."""
  crops = five_crop(images, crop_h, crop_w)
  return jnp.concatenate([crops, crops[:, :, :, ::-1]])


def check(mode: str, pad: int, crop: int, height: int, width: int) -> None:
  """Raises ConfigError for an unknown mode or a crop that does not fit the padded image."""
  if mode not in MODES:
    raise ConfigError(f"unknown test-time augmentation eval.tta={mode!r}; choose one of {', '.join(MODES)}")
  if pad < 0 or crop < 0:
    raise ConfigError(f"eval.tta_pad={pad} and eval.tta_crop={crop} must be >= 0")
  if crop > min(height, width) + 2 * pad:
    raise ConfigError(f"eval.tta_crop={crop} exceeds the {height + 2 * pad}x{width + 2 * pad} padded images; "
                      "lower it or raise eval.tta_pad")


def views(images: jax.Array, mode: str, pad: int = 0, crop: int = 0) -> jax.Array:
  """The TTA views of a batch, each of the batch's own image size.

  Args:
    images: [N, H, W, C] stored-format images (uint8 or float).
    mode: one of `MODES`.
    pad: zero padding added to each side before cropping.
    crop: square crop side; 0 crops H x W (the original size).

  Returns:
    [V, N, H, W, C] with V = 1, 1, 2, 5, 10 for the modes in `MODES` order. Crops of another size than H x W
    are resized bilinearly to H x W and returned as float32 on the input's value scale.
  """
  _, height, width, _ = images.shape
  check(mode, pad, crop, height, width)
  if mode == "none":
    return images[None]
  crop_h, crop_w = (crop, crop) if crop else (height, width)
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else images
  crops = ten_crop(padded, crop_h, crop_w) if mode == "ten_crop" else five_crop(padded, crop_h, crop_w)
  crops = {"center": crops[:1], "flip": jnp.stack([crops[0], crops[0, :, :, ::-1]]),
           "five_crop": crops, "ten_crop": crops}[mode]
  if (crop_h, crop_w) != (height, width):
    crops = jax.image.resize(crops.astype(jnp.float32), crops.shape[:2] + (height, width, crops.shape[-1]),
                             "bilinear")
  return crops


def average_probabilities(logits_fn: Callable[[jax.Array], jax.Array], images: jax.Array, mode: str,
                          pad: int = 0, crop: int = 0) -> jax.Array:
  """Mean softmax probabilities over the TTA views of `images`.

  Args:
    logits_fn: [N, H, W, C] images -> [N, K] logits.
    images: [N, H, W, C].
    mode, pad, crop: as in `views`.

  Returns:
    [N, K] float32 probabilities. Views run one after another (`lax.map`), so memory stays that of one view.
  """
  stacked = views(images, mode, pad, crop)
  probs = jax.lax.map(lambda view: jax.nn.softmax(logits_fn(view).astype(jnp.float32), axis=-1), stacked)
  return jnp.mean(probs, axis=0)
