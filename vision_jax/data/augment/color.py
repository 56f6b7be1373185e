"""Pixel-value ops: dtype and normalization, colour jitter and AlexNet's PCA lighting noise.

Colour jitter follows torchvision's ColorJitter: float images in [0, 1] (put `to_float` first), factors drawn
per example, results clipped to [0, 1]. Grayscale (one-channel) images have no saturation or hue, so those two
ops leave them unchanged; PCA lighting needs RGB.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.data.augment.registry import Op, pixel_op, register
from vision_jax.errors import ConfigError, DataError

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL and torchvision
# Eigenvalues and eigenvectors (columns) of the covariance of ImageNet RGB pixels in [0, 1], as published with
# fb.resnet.torch (Gross & Wilber, 2016) for the lighting noise of Krizhevsky et al. (2012), Section 4.1.
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = ((-0.5675, 0.7192, 0.4009),
                   (-0.5808, -0.0045, -0.8140),
                   (-0.5836, -0.6948, 0.4203))


@register("to_float")
def to_float(scale: float = 1.0 / 255.0) -> Op:
  """Casts to float32 and multiplies by `scale` (uint8 0..255 -> 0..1 by default)."""
  return pixel_op(lambda rng, images: images.astype(jnp.float32) * scale)


@register("normalize")
def normalize(mean: Any = 0.0, std: Any = 1.0) -> Op:
  """Per-channel (x - mean) / std; `mean` and `std` are scalars or per-channel sequences."""
  mean_arr, std_arr = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
  return pixel_op(lambda rng, images: (images - mean_arr) / std_arr)


def _check_float(op: str, images: jax.Array) -> None:
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise ConfigError(f"{op} works on float images in [0, 1]; got {images.dtype}: put to_float before it")


def grayscale(images: jax.Array) -> jax.Array:
  """Luma [N, H, W, 1] of RGB images [N, H, W, 3] (BT.601 weights); other channel counts: channel mean."""
  if images.shape[-1] == 3:
    return jnp.einsum("nhwc,c->nhw", images, jnp.array(LUMA_WEIGHTS, images.dtype))[..., None]
  return jnp.mean(images, axis=-1, keepdims=True)


def adjust_brightness(images: jax.Array, factors: jax.Array) -> jax.Array:
  """Images [N, H, W, C] in [0, 1] times `factors` [N], clipped to [0, 1]."""
  return jnp.clip(images * factors[:, None, None, None], 0.0, 1.0)


def adjust_contrast(images: jax.Array, factors: jax.Array) -> jax.Array:
  """Blends images [N, H, W, C] with their mean gray level: mean + factor (x - mean), clipped to [0, 1]."""
  mean = jnp.mean(grayscale(images), axis=(1, 2, 3), keepdims=True)
  return jnp.clip(mean + factors[:, None, None, None] * (images - mean), 0.0, 1.0)


def adjust_saturation(images: jax.Array, factors: jax.Array) -> jax.Array:
  """Blends RGB images [N, H, W, 3] with their luma: gray + factor (x - gray), clipped; 1 channel: unchanged."""
  if images.shape[-1] == 1:
    return images
  _check_rgb("saturation", images)
  gray = grayscale(images)
  return jnp.clip(gray + factors[:, None, None, None] * (images - gray), 0.0, 1.0)


@jax.jit
def rgb_to_hsv(rgb: jax.Array) -> jax.Array:
  """RGB [..., 3] in [0, 1] -> HSV [..., 3], hue in [0, 1) turns (as `colorsys.rgb_to_hsv`)."""
  r, g, b = jnp.moveaxis(rgb, -1, 0)
  value = jnp.max(rgb, axis=-1)
  delta = value - jnp.min(rgb, axis=-1)
  safe = jnp.where(delta > 0, delta, 1.0)
  sat = jnp.where(value > 0, delta / jnp.where(value > 0, value, 1.0), 0.0)
  hue = jnp.where(value == r, jnp.mod((g - b) / safe, 6.0),
                  jnp.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
  hue = jnp.where(delta > 0, hue / 6.0, 0.0)
  return jnp.stack([hue, sat, value], axis=-1)


@jax.jit
def hsv_to_rgb(hsv: jax.Array) -> jax.Array:
  """HSV [..., 3] (hue in turns) -> RGB [..., 3] (as `colorsys.hsv_to_rgb`)."""
  hue, sat, value = jnp.moveaxis(hsv, -1, 0)
  channel = lambda n: value - value * sat * jnp.clip(jnp.minimum((n + hue * 6) % 6, 4 - (n + hue * 6) % 6), 0, 1)
  return jnp.stack([channel(5.0), channel(3.0), channel(1.0)], axis=-1)


@jax.jit
def adjust_hue(images: jax.Array, deltas: jax.Array) -> jax.Array:
  """Turns the hue of RGB images [N, H, W, 3] by `deltas` [N] (fractions of a turn); 1 channel: unchanged."""
  if images.shape[-1] == 1:
    return images
  _check_rgb("hue", images)
  hsv = rgb_to_hsv(images)
  hue = jnp.mod(hsv[..., 0] + deltas[:, None, None], 1.0)
  return jnp.clip(hsv_to_rgb(jnp.stack([hue, hsv[..., 1], hsv[..., 2]], -1)), 0.0, 1.0)


def pca_lighting(images: jax.Array, alphas: jax.Array, eigval: Any = IMAGENET_EIGVAL,
                 eigvec: Any = IMAGENET_EIGVEC) -> jax.Array:
  """Adds eigvec @ (alpha * eigval) to every pixel of RGB images (Krizhevsky et al., 2012, Section 4.1).

  Args:
    images: [N, H, W, 3] float images (not clipped afterwards, as in the reference implementations).
    alphas: [N, 3] per-image weights, drawn from N(0, 0.1^2) in the paper.
    eigval: [3] eigenvalues of the RGB pixel covariance (ImageNet's by default).
    eigvec: [3, 3] the matching eigenvectors as columns.

  Returns:
    [N, H, W, 3] images.
  """
  _check_rgb("lighting", images)
  shift = jnp.einsum("cj,nj->nc", jnp.asarray(eigvec, images.dtype), alphas * jnp.asarray(eigval, images.dtype))
  return images + shift[:, None, None, :]


def _check_rgb(op: str, images: jax.Array) -> None:
  if images.shape[-1] != 3:
    raise DataError(f"{op} needs RGB images [N, H, W, 3]; got {images.shape[-1]} channels: drop {op} from "
                    "input.augment for these images")


def _jitter_op(name: str, adjust, factor: float) -> Op:
  if factor < 0:
    raise ConfigError(f"{name}(factor={factor}) needs factor >= 0 (factors are drawn from [1 - f, 1 + f])")

  def fn(rng, images):
    _check_float(name, images)
    factors = jax.random.uniform(rng, images.shape[:1], minval=max(0.0, 1.0 - factor), maxval=1.0 + factor)
    return adjust(images, factors)

  return pixel_op(fn)


@register("brightness")
def brightness(factor: float = 0.4) -> Op:
  """Multiplies each image by a factor drawn uniformly from [max(0, 1 - factor), 1 + factor]."""
  return _jitter_op("brightness", adjust_brightness, factor)


@register("contrast")
def contrast(factor: float = 0.4) -> Op:
  """Scales each image's deviation from its mean gray level by a factor from [max(0, 1 - factor), 1 + factor]."""
  return _jitter_op("contrast", adjust_contrast, factor)


@register("saturation")
def saturation(factor: float = 0.4) -> Op:
  """Scales each RGB image's deviation from its luma by a factor from [max(0, 1 - factor), 1 + factor]."""
  return _jitter_op("saturation", adjust_saturation, factor)


@register("hue")
def hue(delta: float = 0.1) -> Op:
  """Turns each RGB image's hue by an amount drawn uniformly from [-delta, delta] turns (delta <= 0.5)."""
  if not 0 <= delta <= 0.5:
    raise ConfigError(f"hue(delta={delta}) must be in [0, 0.5] (a fraction of a turn each way)")

  def fn(rng, images):
    _check_float("hue", images)
    return adjust_hue(images, jax.random.uniform(rng, images.shape[:1], minval=-delta, maxval=delta))

  return pixel_op(fn)


@register("lighting")
def lighting(std: float = 0.1, eigval: Any = IMAGENET_EIGVAL, eigvec: Any = IMAGENET_EIGVEC) -> Op:
  """AlexNet's PCA colour noise: per image, alphas ~ N(0, std^2) weight the eigenvectors of the RGB covariance."""
  if std < 0:
    raise ConfigError(f"lighting(std={std}) needs std >= 0")
  if np.shape(eigval) != (3,) or np.shape(eigvec) != (3, 3):
    raise ConfigError("lighting takes eigval as 3 numbers and eigvec as 3 rows of 3 numbers (columns are vectors)")

  def fn(rng, images):
    _check_float("lighting", images)
    return pca_lighting(images, std * jax.random.normal(rng, (images.shape[0], 3)), eigval, eigvec)

  return pixel_op(fn)
