"""Affine warps of image batches and of their boxes, the core of the geometric ops.

Coordinates are continuous pixel coordinates (x, y): pixel (row r, column c) covers [c, c + 1) x [r, r + 1) and
has its centre at (c + 0.5, r + 0.5). A transform is a forward affine map `[N, 2, 3]` from input to output
coordinates, one per image. Images are warped by the inverse map (each output pixel centre samples the input,
bilinear or nearest, `fill` outside; masks always nearest, 0 outside); boxes and keypoints by the forward map
(boxes: the axis-aligned box around the four moved corners, clipped to the output). When the inverse map sends
pixel centres to pixel centres (flips, quarter turns, whole-pixel shifts, integer shears about an odd-sized
centre) the result is an exact copy of pixels.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from vision_jax.data.augment.registry import Sample
from vision_jax.errors import ConfigError

_ORDERS = {"nearest": 0, "bilinear": 1}


def interpolation_order(name: str) -> int:
  """"nearest" -> 0, "bilinear" -> 1; anything else is a ConfigError."""
  if name not in _ORDERS:
    raise ConfigError(f"interpolation={name!r} is not supported; use 'bilinear' or 'nearest'")
  return _ORDERS[name]


def about_centre(linear: jax.Array, in_size: tuple[int, int], out_size: tuple[int, int] | None = None) -> jax.Array:
  """Forward maps [N, 2, 3] applying `linear` [N, 2, 2] about the image centre (input centre -> output centre)."""
  in_h, in_w = in_size
  out_h, out_w = out_size or in_size
  centre_in = jnp.array([in_w / 2.0, in_h / 2.0], jnp.float32)
  centre_out = jnp.array([out_w / 2.0, out_h / 2.0], jnp.float32)
  shift = centre_out - jnp.einsum("nij,j->ni", linear, centre_in)
  return jnp.concatenate([linear, shift[:, :, None]], axis=2)


def compose(second: jax.Array, first: jax.Array) -> jax.Array:
  """The map [N, 2, 3] applying `first` [N, 2, 3] then `second` [N, 2, 3] (one resampling instead of two)."""
  linear = jnp.einsum("nij,njk->nik", second[:, :, :2], first[:, :, :2])
  shift = jnp.einsum("nij,nj->ni", second[:, :, :2], first[:, :, 2]) + second[:, :, 2]
  return jnp.concatenate([linear, shift[:, :, None]], axis=2)


def invert(forward: jax.Array) -> jax.Array:
  """Inverse of affine maps [N, 2, 3], in closed form (exact for determinant-1 maps with integer entries)."""
  a, b, c, d = forward[:, 0, 0], forward[:, 0, 1], forward[:, 1, 0], forward[:, 1, 1]
  det = a * d - b * c
  linear = jnp.stack([jnp.stack([d, -b], -1), jnp.stack([-c, a], -1)], -2) / det[:, None, None]
  shift = -jnp.einsum("nij,nj->ni", linear, forward[:, :, 2])
  return jnp.concatenate([linear, shift[:, :, None]], axis=2)


def _gather(image: jax.Array, rows: jax.Array, cols: jax.Array, fill: float) -> jax.Array:
  h, w = image.shape[:2]
  inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
  values = image[jnp.clip(rows, 0, h - 1), jnp.clip(cols, 0, w - 1)]
  return jnp.where(inside[..., None], values, jnp.asarray(fill, values.dtype))


def sample_image(image: jax.Array, rows: jax.Array, cols: jax.Array, order: int = 1, fill: float = 0.0) -> jax.Array:
  """Samples one float image [H, W, C] at fractional pixel indices `rows`, `cols` [h, w] -> [h, w, C].

  Bilinear (`order` 1) or nearest (`order` 0); neighbours outside the image count as `fill`. At integer indices
  bilinear sampling returns the pixel values exactly.
  """
  if order == 0:
    return _gather(image, jnp.floor(rows + 0.5).astype(jnp.int32), jnp.floor(cols + 0.5).astype(jnp.int32), fill)
  r0, c0 = jnp.floor(rows), jnp.floor(cols)
  dr, dc = (rows - r0)[..., None], (cols - c0)[..., None]
  r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
  top = _gather(image, r0, c0, fill) * (1 - dc) + _gather(image, r0, c0 + 1, fill) * dc
  bottom = _gather(image, r0 + 1, c0, fill) * (1 - dc) + _gather(image, r0 + 1, c0 + 1, fill) * dc
  return top * (1 - dr) + bottom * dr


@functools.partial(jax.jit, static_argnames=("out_size", "order", "fill"))
def warp_images(images: jax.Array, forward: jax.Array, out_size: tuple[int, int] | None = None, order: int = 1,
                fill: float = 0.0) -> jax.Array:
  """Warps images [N, H, W, C] by forward affine maps [N, 2, 3] into [N, h, w, C] (`out_size` (h, w), default H, W).

  Integer images are sampled in float32 and rounded back to their dtype.
  """
  h, w = out_size or images.shape[1:3]
  inverse = invert(forward.astype(jnp.float32))
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) + 0.5, jnp.arange(w, dtype=jnp.float32) + 0.5,
                        indexing="ij")
  floats = images.astype(jnp.float32) if jnp.issubdtype(images.dtype, jnp.integer) else images

  def one(image, m):
    x_in = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    y_in = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    return sample_image(image, y_in - 0.5, x_in - 0.5, order, fill)

  out = jax.vmap(one)(floats, inverse)
  return jnp.round(out).astype(images.dtype) if floats is not images else out


def move_boxes(boxes: jax.Array, forward: jax.Array, out_size: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
  """Moves xyxy pixel boxes [N, M, 4] by forward maps [N, 2, 3]: the box around the moved corners, clipped.

  Args:
    boxes: [N, M, 4] (x1, y1, x2, y2) in input pixels.
    forward: [N, 2, 3] input -> output coordinate maps.
    out_size: (height, width) of the output images, for clipping.

  Returns:
    (boxes [N, M, 4] in output pixels, visible float32 [N, M]): boxes that leave the image become zero-area
    boxes on its border; `visible` is the fraction of each moved box's area left after clipping (0 for
    zero-area boxes).
  """
  x1, y1, x2, y2 = jnp.moveaxis(boxes.astype(jnp.float32), -1, 0)
  corners = jnp.stack([jnp.stack([x1, y1], -1), jnp.stack([x2, y1], -1), jnp.stack([x1, y2], -1),
                       jnp.stack([x2, y2], -1)], axis=2)  # [N, M, 4, 2]
  moved = jnp.einsum("nij,nmkj->nmki", forward[:, :, :2], corners) + forward[:, None, None, :, 2]
  h, w = out_size
  lo, hi = jnp.min(moved, axis=2), jnp.max(moved, axis=2)
  limit = jnp.array([w, h], jnp.float32)
  lo_clipped, hi_clipped = jnp.clip(lo, 0.0, limit), jnp.clip(hi, 0.0, limit)
  area = jnp.prod(hi - lo, axis=-1)
  clipped_area = jnp.prod(hi_clipped - lo_clipped, axis=-1)
  visible = jnp.where(area > 0, clipped_area / jnp.where(area > 0, area, 1.0), 0.0)
  return jnp.concatenate([lo_clipped, hi_clipped], axis=-1).astype(boxes.dtype), visible


@functools.partial(jax.jit, static_argnames=("out_size",))
def transform_boxes(boxes: jax.Array, forward: jax.Array, out_size: tuple[int, int]) -> jax.Array:
  """The moved, clipped boxes [N, M, 4] of `move_boxes` (boxes that leave the image: zero-area on its border)."""
  return move_boxes(boxes, forward, out_size)[0]


def move_keypoints(keypoints: jax.Array, forward: jax.Array, out_size: tuple[int, int]) -> jax.Array:
  """Moves keypoints [N, ..., 3] (x, y, visibility) by forward maps [N, 2, 3]; visibility 0 outside the image."""
  n = keypoints.shape[0]
  flat = keypoints.reshape(n, -1, 3).astype(jnp.float32)
  xy = jnp.einsum("nij,nkj->nki", forward[:, :, :2], flat[..., :2]) + forward[:, None, :, 2]
  h, w = out_size
  inside = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
  moved = jnp.concatenate([xy, jnp.where(inside, flat[..., 2], 0.0)[..., None]], -1)
  return moved.reshape(keypoints.shape).astype(keypoints.dtype)


def move_annotations(sample: Sample, forward: jax.Array, out_size: tuple[int, int]) -> Sample:
  """Moves a `Sample`'s boxes (updating `visible`) and keypoints by forward maps [N, 2, 3]; pixels untouched."""
  boxes, visible, keypoints = sample.boxes, sample.visible, sample.keypoints
  if boxes is not None:
    boxes, fraction = move_boxes(boxes, forward, out_size)
    visible = fraction if visible is None else visible * fraction
  if keypoints is not None:
    keypoints = move_keypoints(keypoints, forward, out_size)
  return sample._replace(boxes=boxes, visible=visible, keypoints=keypoints)


def warp_sample(sample: Sample, forward: jax.Array, out_size: tuple[int, int] | None = None, order: int = 1,
                fill: float = 0.0) -> Sample:
  """Warps a `Sample`'s images (`order`, `fill`), masks (nearest, 0 outside), boxes and keypoints by the same
  forward maps [N, 2, 3]."""
  out_size = tuple(out_size or sample.images.shape[1:3])
  images = warp_images(sample.images, forward, out_size, order, fill)
  masks = None if sample.masks is None else warp_images(sample.masks, forward, out_size, 0, 0.0)
  return move_annotations(sample._replace(images=images, masks=masks), forward, out_size)
