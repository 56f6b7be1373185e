"""Geometric ops: flips, padding and crops, rotation, shear, zoom, translation and random affine maps.

Every op moves `Sample.boxes` (xyxy pixels), `Sample.masks` (nearest) and `Sample.keypoints` with the pixels;
`flip_lr` also swaps left and right keypoints by `Sample.keypoint_flip`. Random parameters are drawn per example
from the op's key; output shapes are static. The matrix builders (`rotation`, `shearing`, ...) return forward maps
[N, 2, 3] that `warp.compose` chains and `warp.warp_images` / `warp.transform_boxes` apply, for notebooks:

    >>> forward = rotation(jnp.radians(jnp.array([30.0])), (32, 32))
    >>> images, boxes = warp_images(images, forward), transform_boxes(boxes, forward, (32, 32))
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from vision_jax.data.augment.registry import Op, register
from vision_jax.data.augment.warp import (about_centre, compose, interpolation_order, move_annotations, warp_images,
                                          warp_sample)
from vision_jax.errors import ConfigError

Size = tuple[int, int]


def _snap(x: jax.Array) -> jax.Array:
  # cos/sin of quarter turns are off by ~1e-8 in float32; snapping them makes 90-degree turns exact copies.
  return jnp.where(jnp.abs(x - jnp.round(x)) < 1e-6, jnp.round(x), x)


def rotation(angles: jax.Array, size: Size) -> jax.Array:
  """Forward maps [N, 2, 3] turning images of `size` (h, w) about their centre by `angles` [N] radians,
  counter-clockwise as seen on screen (np.rot90's direction)."""
  cos, sin = _snap(jnp.cos(angles)), _snap(jnp.sin(angles))
  linear = jnp.stack([jnp.stack([cos, sin], -1), jnp.stack([-sin, cos], -1)], -2)
  return about_centre(linear, size)


def shearing(sx: jax.Array, sy: jax.Array, size: Size) -> jax.Array:
  """Forward maps [N, 2, 3] shearing about the centre: x += sx (y - cy), then y += sy (x - cx).

  Args:
    sx: [N] horizontal shear factors (tan of the shear angle); rows below the centre move right for sx > 0.
    sy: [N] vertical shear factors; columns right of the centre move down for sy > 0.
    size: (height, width) of the images.
  """
  one = jnp.ones_like(sx)
  linear = jnp.stack([jnp.stack([one, sx], -1), jnp.stack([sy, 1 + sx * sy], -1)], -2)
  return about_centre(linear, size)


def scaling(factors: jax.Array, size: Size) -> jax.Array:
  """Forward maps [N, 2, 3] scaling about the centre by `factors` [N] (> 1 zooms in)."""
  eye = jnp.eye(2, dtype=jnp.float32)
  return about_centre(factors[:, None, None] * eye, size)


def translation(dx: jax.Array, dy: jax.Array) -> jax.Array:
  """Forward maps [N, 2, 3] moving content by `dx`, `dy` [N] pixels (right, down)."""
  one, zero = jnp.ones_like(dx), jnp.zeros_like(dx)
  return jnp.stack([jnp.stack([one, zero, dx], -1), jnp.stack([zero, one, dy], -1)], -2)


def crop_resize(x0: jax.Array, y0: jax.Array, widths: jax.Array, heights: jax.Array, out_size: Size) -> jax.Array:
  """Forward maps [N, 2, 3] sending the windows (x0, y0, width, height) [N each] onto a whole `out_size` image."""
  sx, sy = out_size[1] / widths, out_size[0] / heights
  zero = jnp.zeros_like(sx)
  return jnp.stack([jnp.stack([sx, zero, -x0 * sx], -1), jnp.stack([zero, sy, -y0 * sy], -1)], -2)


def rotate_images(images: jax.Array, angles: jax.Array, order: int = 1) -> jax.Array:
  """Rotates images [N, H, W, C] about their centres by `angles` [N] radians counter-clockwise, zero fill.

  `order` 0 is nearest, 1 bilinear. Quarter turns of square images equal `np.rot90` exactly.
  """
  return warp_images(images, rotation(angles, images.shape[1:3]), order=order)


def _check(ok: bool, message: str) -> None:
  if not ok:
    raise ConfigError(message)


def _interval(name: str, value: Any, low: float = -math.inf) -> tuple[float, float]:
  ok = isinstance(value, (tuple, list)) and len(value) == 2 and low <= value[0] <= value[1]
  _check(ok, f"{name}={value!r} must be a pair (low, high) with {low} <= low <= high")
  return float(value[0]), float(value[1])


def _probability(p: float) -> float:
  _check(0.0 <= p <= 1.0, f"p={p} is a probability; use a value in [0, 1]")
  return float(p)


def _uniform(rng: jax.Array, n: int, low: float, high: float) -> jax.Array:
  return jax.random.uniform(rng, (n,), minval=low, maxval=high)


def _warp_op(make_forward: Callable[[jax.Array, int, Size], jax.Array], interpolation: str, fill: float,
             out_size: Size | None = None) -> Op:
  order = interpolation_order(interpolation)

  def op(rng, sample):
    n, h, w = sample.images.shape[:3]
    return warp_sample(sample, make_forward(rng, n, (h, w)), out_size, order, fill)

  return op


def _flip_op(p: float, axis: int) -> Op:
  p = _probability(p)

  def op(rng, sample):
    n, h, w = sample.images.shape[:3]
    flip = jax.random.uniform(rng, (n,)) < p
    where = lambda x: jnp.where(flip.reshape((n,) + (1,) * (x.ndim - 1)), jnp.flip(x, axis), x)
    sample = sample._replace(images=where(sample.images),
                             masks=None if sample.masks is None else where(sample.masks))
    # x -> w - x (axis 2) or y -> h - y (axis 1) where flipped, identity elsewhere.
    sign = jnp.where(flip, -1.0, 1.0)
    shift = jnp.where(flip, float(w if axis == 2 else h), 0.0)
    one, zero = jnp.ones_like(sign), jnp.zeros_like(sign)
    if axis == 2:
      forward = jnp.stack([jnp.stack([sign, zero, shift], -1), jnp.stack([zero, one, zero], -1)], -2)
    else:
      forward = jnp.stack([jnp.stack([one, zero, zero], -1), jnp.stack([zero, sign, shift], -1)], -2)
    sample = move_annotations(sample, forward, (h, w))
    if axis == 2 and sample.keypoints is not None and sample.keypoint_flip is not None:
      swapped = jnp.take(sample.keypoints, sample.keypoint_flip, axis=-2)
      flip_points = flip.reshape((n,) + (1,) * (sample.keypoints.ndim - 1))
      sample = sample._replace(keypoints=jnp.where(flip_points, swapped, sample.keypoints))
    return sample

  return op


@register("flip_lr")
def flip_lr(p: float = 0.5) -> Op:
  """Mirrors each image left-right with probability `p`."""
  return _flip_op(p, axis=2)


@register("flip_ud")
def flip_ud(p: float = 0.5) -> Op:
  """Mirrors each image upside down with probability `p`."""
  return _flip_op(p, axis=1)


def _pad_spatial(x: jax.Array, top: int, bottom: int, left: int, right: int) -> jax.Array:
  return jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


@register("pad")
def pad(to: int = 32) -> Op:
  """Zero-pads the spatial dims symmetrically to `to` x `to` (e.g. 28x28 MNIST -> 32x32 for classic LeNet-5)."""

  def op(rng, sample):
    n, h, w = sample.images.shape[:3]
    if h > to or w > to:
      raise ConfigError(f"pad(to={to}) got {h}x{w} images, larger than the target; raise `to`")
    top, left = (to - h) // 2, (to - w) // 2
    padding = (top, to - h - top, left, to - w - left)
    sample = sample._replace(images=_pad_spatial(sample.images, *padding),
                             masks=None if sample.masks is None else _pad_spatial(sample.masks, *padding))
    forward = translation(jnp.full((n,), float(left)), jnp.full((n,), float(top)))
    return move_annotations(sample, forward, (to, to))

  return op


@register("pad_crop")
def pad_crop(pad: int = 4) -> Op:  # pylint: disable=redefined-outer-name
  """Zero-pads each side by `pad` pixels and crops a random window of the original size per image."""
  _check(pad >= 0, f"pad_crop(pad={pad}) needs pad >= 0")

  def op(rng, sample):
    n, h, w = sample.images.shape[:3]
    offsets = jax.random.randint(rng, (n, 2), 0, 2 * pad + 1)  # (row, column) of each window

    def crop(x):
      window = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (h, w, x.shape[-1]))
      return jax.vmap(window)(_pad_spatial(x, pad, pad, pad, pad), offsets)

    sample = sample._replace(images=crop(sample.images), masks=None if sample.masks is None else crop(sample.masks))
    shift = (pad - offsets).astype(jnp.float32)
    return move_annotations(sample, translation(shift[:, 1], shift[:, 0]), (h, w))

  return op


@register("random_resized_crop")
def random_resized_crop(scale: Any = (0.08, 1.0), ratio: Any = (3 / 4, 4 / 3), size: Any = 0,
                        interpolation: str = "bilinear") -> Op:
  """Crops a random window and resizes it to `size` (Szegedy et al., 2015, "Going deeper with convolutions").

  The window covers a fraction of the image area drawn uniformly from `scale` with a width/height ratio drawn
  log-uniformly from `ratio`, shrunk to fit the image if needed, at a uniform position. `size` is an int, an
  (h, w) pair, or 0 for the input size. Resizing samples without anti-aliasing.
  """
  low, high = _interval("scale", scale, 0.0)
  _check(high <= 1.0 and high > 0.0, f"scale={scale!r} is an area fraction; use values in (0, 1]")
  log_ratio = tuple(map(math.log, _interval("ratio", ratio, 1e-6)))
  out_size = (size, size) if isinstance(size, int) else tuple(size)
  _check(len(out_size) == 2 and min(out_size) >= 0, f"size={size!r} must be 0, an int or a pair (h, w)")
  order = interpolation_order(interpolation)

  def op(rng, sample):
    n, h, w = sample.images.shape[:3]
    target = (h, w) if out_size == (0, 0) else out_size
    keys = jax.random.split(rng, 4)
    area = _uniform(keys[0], n, low, high) * h * w
    aspect = jnp.exp(_uniform(keys[1], n, *log_ratio))
    widths = jnp.minimum(jnp.sqrt(area * aspect), w)
    heights = jnp.minimum(jnp.sqrt(area / aspect), h)
    x0 = jax.random.uniform(keys[2], (n,)) * (w - widths)
    y0 = jax.random.uniform(keys[3], (n,)) * (h - heights)
    return warp_sample(sample, crop_resize(x0, y0, widths, heights, target), target, order)

  return op


@register("rotate")
def rotate(degrees: float = 10.0, interpolation: str = "bilinear", fill: float = 0.0) -> Op:
  """Rotates each image about its centre by an angle drawn uniformly from [-degrees, degrees]."""
  _check(degrees >= 0, f"rotate(degrees={degrees}) needs degrees >= 0 (the angle range is symmetric)")
  max_angle = math.radians(degrees)
  make = lambda rng, n, size: rotation(_uniform(rng, n, -max_angle, max_angle), size)
  return _warp_op(make, interpolation, fill)


def _check_shear(x: float, y: float) -> None:
  _check(0 <= x < 90 and 0 <= y < 90, f"shear angles x={x}, y={y} must be degrees in [0, 90)")


def _shear_factors(rng: jax.Array, n: int, x: float, y: float) -> tuple[jax.Array, jax.Array]:
  kx, ky = jax.random.split(rng)
  tan = lambda key, deg: jnp.tan(jnp.radians(_uniform(key, n, -deg, deg)))
  return tan(kx, x), tan(ky, y)


@register("shear")
def shear(x: float = 10.0, y: float = 0.0, interpolation: str = "bilinear", fill: float = 0.0) -> Op:
  """Shears each image by angles drawn uniformly from [-x, x] (horizontal) and [-y, y] (vertical) degrees."""
  _check_shear(x, y)
  make = lambda rng, n, size: shearing(*_shear_factors(rng, n, x, y), size)
  return _warp_op(make, interpolation, fill)


@register("zoom")
def zoom(scale: Any = (0.8, 1.2), interpolation: str = "bilinear", fill: float = 0.0) -> Op:
  """Scales each image about its centre by a factor drawn uniformly from `scale` (> 1 zooms in)."""
  low, high = _interval("scale", scale, 1e-6)
  make = lambda rng, n, size: scaling(_uniform(rng, n, low, high), size)
  return _warp_op(make, interpolation, fill)


def _check_translate(x: float, y: float) -> None:
  _check(x >= 0 and y >= 0, f"translate fractions x={x}, y={y} must be >= 0")


def _shifts(rng: jax.Array, n: int, size: Size, x: float, y: float) -> jax.Array:
  kx, ky = jax.random.split(rng)
  dx = jnp.round(_uniform(kx, n, -x, x) * size[1])
  dy = jnp.round(_uniform(ky, n, -y, y) * size[0])
  return translation(dx, dy)


@register("translate")
def translate(x: float = 0.1, y: float = 0.1, fill: float = 0.0) -> Op:
  """Shifts each image by whole pixels, up to a fraction `x` of its width and `y` of its height each way."""
  _check_translate(x, y)
  return _warp_op(lambda rng, n, size: _shifts(rng, n, size, x, y), "nearest", fill)


@register("affine")
def affine(degrees: float = 0.0, translate: Any = (0.0, 0.0), scale: Any = (1.0, 1.0), shear: Any = (0.0, 0.0),
           interpolation: str = "bilinear", fill: float = 0.0) -> Op:  # pylint: disable=redefined-outer-name
  """Random shear, zoom, rotation then whole-pixel translation, composed into one map (one resampling).

  Args are the ranges of `shear_op` (x, y degrees), `zoom` (scale), `rotate` (degrees) and `translate`
  (x, y fractions); the defaults are the identity.
  """
  _check(degrees >= 0, f"affine(degrees={degrees}) needs degrees >= 0")
  max_angle = math.radians(degrees)
  low, high = _interval("scale", scale, 1e-6)
  _check(len(translate) == 2 and len(shear) == 2, "affine translate and shear take (x, y) pairs")
  _check_shear(*shear)
  _check_translate(*translate)

  def make(rng, n, size):
    keys = jax.random.split(rng, 4)
    forward = shearing(*_shear_factors(keys[0], n, *shear), size)
    forward = compose(scaling(_uniform(keys[1], n, low, high), size), forward)
    forward = compose(rotation(_uniform(keys[2], n, -max_angle, max_angle), size), forward)
    return compose(_shifts(keys[3], n, size, *translate), forward)

  return _warp_op(make, interpolation, fill)
