"""RoIPool (Girshick, Fast R-CNN, 2015) with the semantics of `torchvision.ops.roi_pool`, on NHWC features.

The box is rounded to feature pixels (half away from zero), split into output_size bins with floor/ceil
edges, and each bin takes the maximum of its pixels (0 for an empty bin). The reference pools one RoI at a
time (`lax.map`) with masked maxima over rows, then columns: memory O(h * H * W * C) per RoI.
"""

import functools

import jax
import jax.numpy as jnp

from vision_jax.ops.roi_align import check_roi_inputs


def _round_half_away(x: jax.Array) -> jax.Array:
  return jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5)


def _bin_edges(start, length, out_len: int, size: int):
  """Start and end (exclusive) pixel of each bin along one axis -> two `[K, out_len]` int32."""
  bin_size = length.astype(jnp.float32)[:, None] / out_len
  p = jnp.arange(out_len, dtype=jnp.float32)[None, :]
  lo = jnp.floor(p * bin_size).astype(jnp.int32) + start[:, None]
  hi = jnp.ceil((p + 1) * bin_size).astype(jnp.int32) + start[:, None]
  return jnp.clip(lo, 0, size), jnp.clip(hi, 0, size)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _roi_pool(features, boxes, box_batch_index, output_size, spatial_scale):
  _, hgt, wid, _ = features.shape
  oh, ow = output_size
  r = _round_half_away(boxes.astype(jnp.float32) * jnp.float32(spatial_scale)).astype(jnp.int32)
  x1, y1, x2, y2 = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
  ys, ye = _bin_edges(y1, jnp.maximum(y2 - y1 + 1, 1), oh, hgt)
  xs, xe = _bin_edges(x1, jnp.maximum(x2 - x1 + 1, 1), ow, wid)

  def pool_one(args):
    b, ys, ye, xs, xe = args
    fmap = features[b]
    rows = jnp.arange(hgt)[None, :]
    cols = jnp.arange(wid)[None, :]
    in_row = (rows >= ys[:, None]) & (rows < ye[:, None])  # [oh, H]
    in_col = (cols >= xs[:, None]) & (cols < xe[:, None])  # [ow, W]
    neg = jnp.array(-jnp.inf, fmap.dtype)
    row_max = jnp.max(jnp.where(in_row[:, :, None, None], fmap[None], neg), axis=1)  # [oh, W, C]
    pooled = jnp.max(jnp.where(in_col[None, :, :, None], row_max[:, None], neg), axis=2)  # [oh, ow, C]
    empty = (ye <= ys)[:, None] | (xe <= xs)[None, :]
    return jnp.where(empty[:, :, None], jnp.zeros((), fmap.dtype), pooled)

  return jax.lax.map(pool_one, (box_batch_index, ys, ye, xs, xe))


def roi_pool(features: jax.Array, boxes: jax.Array, box_batch_index: jax.Array,
             output_size: int | tuple[int, int], spatial_scale: float = 1.0) -> jax.Array:
  """RoIPool with the semantics of `torchvision.ops.roi_pool`, on NHWC features.

  Args:
    features: `[B, H, W, C]` feature maps.
    boxes: `[K, 4]` xyxy boxes in input-image pixels.
    box_batch_index: `[K]` int, the batch element of each box.
    output_size: (h, w) of each output, or one int.
    spatial_scale: feature pixels per input pixel (1 / stride).

  Returns:
    `[K, h, w, C]` max-pooled features. (Gradients of tied maxima are shared among the ties, where
    torchvision gives them to the first.)
  """
  oh, ow = check_roi_inputs(features, boxes, box_batch_index, output_size)
  features = jnp.asarray(features)
  if jnp.shape(boxes)[0] == 0:
    return jnp.zeros((0, oh, ow, features.shape[-1]), features.dtype)
  return _roi_pool(features, jnp.asarray(boxes), jnp.asarray(box_batch_index, jnp.int32), (oh, ow),
                   float(spatial_scale))
