"""RoIPool (Girshick, Fast R-CNN, 2015) with the semantics of `torchvision.ops.roi_pool`, on NHWC features.

The box is rounded to feature pixels (half away from zero, C's `round`), split into output_size bins with
floor/ceil edges computed in float32 exactly as torchvision does (`bin = roi_size / pooled`, then
`floor(p * bin)` and `ceil((p + 1) * bin)`), and each bin takes the maximum of its pixels (0 for an empty bin).
The reference finds, one RoI at a time (`lax.map`), the first pixel of each bin in row-major order holding the
maximum (torchvision's argmax), with masked maxima over rows then columns: memory O(h * H * W * C) per RoI.
The output gathers those pixels, so the gradient goes to the argmax alone, as torchvision's backward does.
"""

import functools

import jax
import jax.numpy as jnp

from vision_jax.ops.roi_align import check_roi_inputs


def round_half_away(x: jax.Array) -> jax.Array:
  """C's `round` (half away from zero), exact for every float: `floor(|x| + 0.5)` is not (0.49999997 -> 1)."""
  t = jnp.trunc(x)
  return jnp.where(jnp.abs(x - t) >= 0.5, t + jnp.sign(x), t)


def _bin_edges(start, length, out_len: int, size: int):
  """Start and end (exclusive) pixel of each bin along one axis -> two `[K, out_len]` int32."""
  length = length.astype(jnp.float32)[:, None]
  # XLA rewrites division by a broadcast scalar as multiplication by its rounded reciprocal, which moves edges
  # by a pixel (7 * fl(1/6) * 6 > 7 where fl(7/6) * 6 == 7); `length * 0 + pooled` is an array that no pass
  # folds (x * 0.0 is not 0 for inf/nan), so the quotient is a true float32 division as in torchvision.
  bin_size = length / (length * 0.0 + out_len)
  p = jnp.arange(out_len, dtype=jnp.float32)[None, :]
  lo = jnp.floor(p * bin_size).astype(jnp.int32) + start[:, None]
  hi = jnp.ceil((p + 1) * bin_size).astype(jnp.int32) + start[:, None]
  return jnp.clip(lo, 0, size), jnp.clip(hi, 0, size)


def _argmax_one_roi(fmap, ys, ye, xs, xe):
  """Row-major index (y * W + x) of the first maximum of each bin of one RoI -> `[h, w, C]` int32."""
  hgt, wid, _ = fmap.shape
  rows = jnp.arange(hgt)[None, :]
  cols = jnp.arange(wid)[None, :]
  in_row = (rows >= ys[:, None]) & (rows < ye[:, None])  # [oh, H]
  in_col = (cols >= xs[:, None]) & (cols < xe[:, None])  # [ow, W]
  neg = jnp.array(-jnp.inf, fmap.dtype)
  masked = jnp.where(in_row[:, :, None, None], fmap[None], neg)  # [oh, H, W, C]
  row_max = jnp.max(masked, axis=1)  # [oh, W, C]
  row_arg = jnp.argmax(masked, axis=1).astype(jnp.int32)  # first row holding the column maximum
  cand = jnp.where(in_col[None, :, :, None], row_max[:, None], neg)  # [oh, ow, W, C]
  best = jnp.max(cand, axis=2, keepdims=True)
  key = row_arg[:, None] * wid + jnp.arange(wid, dtype=jnp.int32)[None, None, :, None]
  # Among the columns holding the bin maximum, the smallest (row, column) is the first in row-major order.
  key = jnp.where((cand == best) & in_col[None, :, :, None], key, hgt * wid)
  return jnp.min(key, axis=2)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _roi_pool(features, boxes, box_batch_index, output_size, spatial_scale):
  bsz, hgt, wid, chans = features.shape
  oh, ow = output_size
  r = round_half_away(boxes.astype(jnp.float32) * jnp.float32(spatial_scale)).astype(jnp.int32)
  x1, y1, x2, y2 = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
  ys, ye = _bin_edges(y1, jnp.maximum(y2 - y1 + 1, 1), oh, hgt)
  xs, xe = _bin_edges(x1, jnp.maximum(x2 - x1 + 1, 1), ow, wid)
  frozen = jax.lax.stop_gradient(features)
  arg = jax.lax.map(lambda a: _argmax_one_roi(frozen[a[0]], *a[1:]), (box_batch_index, ys, ye, xs, xe))
  empty = (ye <= ys)[:, :, None] | (xe <= xs)[:, None, :]  # [K, oh, ow]
  arg = jnp.where(empty[..., None], 0, arg) + box_batch_index[:, None, None, None] * (hgt * wid)
  flat = features.reshape(bsz * hgt * wid, chans)
  pooled = jnp.take_along_axis(flat, arg.reshape(-1, chans), axis=0).reshape(arg.shape)
  return jnp.where(empty[..., None], jnp.zeros((), features.dtype), pooled)


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
    `[K, h, w, C]` max-pooled features, bit-identical to torchvision's. The gradient of each output goes to
    the first pixel of its bin (row-major) holding the maximum, as in torchvision.
  """
  oh, ow = check_roi_inputs(features, boxes, box_batch_index, output_size)
  features = jnp.asarray(features)
  if jnp.shape(boxes)[0] == 0:
    return jnp.zeros((0, oh, ow, features.shape[-1]), features.dtype)
  return _roi_pool(features, jnp.asarray(boxes), jnp.asarray(box_batch_index, jnp.int32), (oh, ow),
                   float(spatial_scale))
