"""RoIAlign (He et al., Mask R-CNN, 2017) with torchvision's semantics on NHWC features, and its FPN form.

Every output bin averages grid_h x grid_w bilinear samples at regularly spaced points inside the bin (no
rounding of the box, unlike RoIPool). With `aligned=True` the box is shifted by -0.5 pixel so that sample
points line up with pixel centres. The sampling of each RoI is separable: per RoI, bin row and sample row we
keep two source rows and their weights (and the same for columns), and the output is the weighted sum of
4 gathered feature vectors per sample.

Gradients flow to the features only (as in torchvision). They are deterministic: XLA's scatter-add is
sequential on CPU and TPU; on GPU (where scatter-add uses atomics) the backward pass sorts the
contributions by feature location and sums them with a segmented scan in a fixed order instead.
"""

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.backends.cpu import fusion_barrier
from vision_jax.errors import UserError
from vision_jax.ops import checks
from vision_jax.ops import dispatch


def check_roi_inputs(features, boxes, box_batch_index, output_size) -> tuple[int, int]:
  """Shape checks shared by RoIAlign and RoIPool; returns the output size as (h, w)."""
  if jnp.ndim(features) != 4:
    raise UserError(f'features must have shape [B, H, W, C] (NHWC); got {jnp.shape(features)}: add the batch '
                    'axis or transpose NCHW features with jnp.transpose(x, (0, 2, 3, 1)).')
  checks.check_boxes(boxes, ndim=2)
  if jnp.ndim(box_batch_index) != 1:
    raise UserError(f'box_batch_index must have shape [K]; got {jnp.shape(box_batch_index)}: pass the batch '
                    'element of each box.')
  checks.check_same_leading(boxes, box_batch_index, 'boxes', 'box_batch_index')
  oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
  if oh < 1 or ow < 1:
    raise UserError(f'output_size must be positive; got {output_size}.')
  return int(oh), int(ow)


def true_divide(x: jax.Array, divisor) -> jax.Array:
  """`x / divisor` in float32 as one IEEE division, as torchvision computes it.

  XLA rewrites division by a broadcast (a scalar or a smaller array) as multiplication by the rounded
  reciprocal, which is off by an ulp and moves floor/ceil results (7 * fl(1/6) * 6 > 7 where fl(7/6) * 6 == 7).
  `x * 0 + divisor` has the full shape and is folded by no pass (x * 0.0 is not 0 for inf/nan), so the
  quotient stays a true division.
  """
  x = jnp.asarray(x, jnp.float32)
  return x / (x * 0.0 + divisor)


class Sampling(NamedTuple):
  """Where each RoI samples, all `[K]`: start, bin size and grid in its map's pixels, and the map itself.

  `height`, `width` are the map's size and `base` the flat feature row of the RoI's (batch element, 0, 0)
  pixel; with several maps concatenated (an FPN pyramid) each RoI carries its own map.
  """
  start_y: jax.Array
  start_x: jax.Array
  bin_y: jax.Array
  bin_x: jax.Array
  grid_y: jax.Array
  grid_x: jax.Array
  height: jax.Array
  width: jax.Array
  base: jax.Array


def roi_geometry(boxes: jax.Array, spatial_scale, output_size: tuple[int, int], sampling_ratio: int,
                 aligned: bool):
  """Per-RoI start (y, x), bin size (y, x) and sampling grid (y, x) in feature pixels, torchvision's way.

  `spatial_scale` is one float or a `[K]` array (one per RoI). Returns a tuple of six `[K]` arrays:
  start_y, start_x, bin_y, bin_x (float32), grid_y, grid_x (int32).
  """
  oh, ow = output_size
  offset = 0.5 if aligned else 0.0
  scale = jnp.asarray(spatial_scale, jnp.float32)
  b = boxes.astype(jnp.float32) * (scale[:, None] if scale.ndim else scale) - jnp.float32(offset)
  x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
  rw, rh = x2 - x1, y2 - y1
  if not aligned:
    rw, rh = jnp.maximum(rw, 1.0), jnp.maximum(rh, 1.0)
  bin_y, bin_x = true_divide(rh, oh), true_divide(rw, ow)
  if sampling_ratio > 0:
    gy = jnp.full(rh.shape, sampling_ratio, jnp.int32)
    gx = jnp.full(rw.shape, sampling_ratio, jnp.int32)
  else:
    gy = jnp.ceil(bin_y).astype(jnp.int32)
    gx = jnp.ceil(bin_x).astype(jnp.int32)
  return y1, x1, bin_y, bin_x, gy, gx


def roi_sampling(boxes: jax.Array, box_batch_index: jax.Array, spatial_scale, height, width, row_offset,
                 output_size: tuple[int, int], sampling_ratio: int, aligned: bool,
                 max_grid: tuple[int, int] | None) -> Sampling:
  """The `Sampling` of `[K, 4]` boxes on maps of `height` x `width` (ints or `[K]`) starting at `row_offset`.

  Grids are capped at `max_grid` (the static bound of adaptive sampling under jit) unless it is None.
  """
  sy, sx, by, bx, gy, gx = roi_geometry(boxes, spatial_scale, output_size, sampling_ratio, aligned)
  if max_grid is not None:
    gy, gx = jnp.minimum(gy, max_grid[0]), jnp.minimum(gx, max_grid[1])
  k = boxes.shape[0]
  height = jnp.broadcast_to(jnp.asarray(height, jnp.int32), (k,))
  width = jnp.broadcast_to(jnp.asarray(width, jnp.int32), (k,))
  base = jnp.asarray(row_offset, jnp.int32) + jnp.asarray(box_batch_index, jnp.int32) * height * width
  return Sampling(sy, sx, by, bx, gy, gx, height, width, base)


def _axis_taps(start, bin_size, grid, size, out_len: int, max_grid: int):
  """Bilinear taps along one axis: low/high indices and weights, each `[K, out_len, max_grid]`."""
  p = jnp.arange(out_len, dtype=jnp.float32)[None, :, None]
  i = jnp.arange(max_grid, dtype=jnp.int32)[None, None, :]
  g = grid[:, None, None]
  bs = bin_size[:, None, None]
  c = start[:, None, None] + p * bs + true_divide((i.astype(jnp.float32) + 0.5) * bs, g.astype(jnp.float32))
  low, high, wlow, whigh = bilinear_taps(c, size[:, None, None])
  inside = (i < g).astype(jnp.float32)
  return low, high, wlow * inside, whigh * inside


def bilinear_taps(c: jax.Array, size):
  """torchvision's bilinear rule along one axis of length `size` at float positions `c` (any shape).

  `size` is an int or an int array broadcastable to `c`. Returns the low and high integer neighbours and
  their weights; both weights are 0 outside [-1, size].
  """
  ok = (c >= -1.0) & (c <= size)
  c = jnp.maximum(c, 0.0)
  low = jnp.floor(c).astype(jnp.int32)
  edge = low >= size - 1
  low = jnp.where(edge, size - 1, low)
  high = jnp.where(edge, size - 1, low + 1)
  c = jnp.where(edge, low.astype(jnp.float32), c)
  frac = c - low.astype(jnp.float32)
  okf = ok.astype(jnp.float32)
  return low, high, (1.0 - frac) * okf, frac * okf


def sample_plan(sampling: Sampling, output_size: tuple[int, int], max_grid: tuple[int, int], num_rows: int):
  """Flat feature-row indices `[K, h, w, n]` and weights `[K, h, w, n]` (n = 4 corners x samples).

  `num_rows` is the number of rows of the flat feature matrix the indices point into.
  """
  s = sampling
  oh, ow = output_size
  ylo, yhi, wylo, wyhi = _axis_taps(s.start_y, s.bin_y, s.grid_y, s.height, oh, max_grid[0])
  xlo, xhi, wxlo, wxhi = _axis_taps(s.start_x, s.bin_x, s.grid_x, s.width, ow, max_grid[1])
  count = jnp.maximum(s.grid_y * s.grid_x, 1).astype(jnp.float32)
  base = s.base[:, None, None, None, None]
  wid = s.width[:, None, None, None, None]
  idx, wts = [], []
  for yi, wy in ((ylo, wylo), (yhi, wyhi)):
    for xi, wx in ((xlo, wxlo), (xhi, wxhi)):
      # [K, oh, gy, 1, 1] x [K, 1, 1, ow, gx] -> [K, oh, gy, ow, gx]
      idx.append(base + yi[:, :, :, None, None] * wid + xi[:, None, None, :, :])
      wts.append(wy[:, :, :, None, None] * wx[:, None, None, :, :])
  k = s.base.shape[0]
  idx = jnp.stack(idx, -1).transpose(0, 1, 3, 2, 4, 5).reshape(k, oh, ow, -1)
  wts = jnp.stack(wts, -1).transpose(0, 1, 3, 2, 4, 5).reshape(k, oh, ow, -1)
  idx = jnp.clip(idx, 0, num_rows - 1)
  return idx, true_divide(wts, count[:, None, None, None])


def deterministic_segment_sum(values: jax.Array, segment_ids: jax.Array, num_segments: int) -> jax.Array:
  """Sum of `values [M, C]` per id in `segment_ids [M]` -> `[num_segments, C]`, in a fixed order.

  Sorts by id (stable), sums each run of equal ids with a segmented associative scan (a fixed tree on
  every backend) and writes each run's total once, so no two updates hit the same row.
  """
  order = jnp.argsort(segment_ids, stable=True)
  sid = segment_ids[order]
  vals = values[order]
  starts = jnp.concatenate([jnp.ones((1,), bool), sid[1:] != sid[:-1]])
  ends = jnp.concatenate([sid[1:] != sid[:-1], jnp.ones((1,), bool)])

  def combine(a, b):
    fa, va = a
    fb, vb = b
    return fa | fb, jnp.where(fb[..., None], vb, va + vb)

  _, sums = jax.lax.associative_scan(combine, (starts, vals))
  target = jnp.where(ends, sid, num_segments)
  return jnp.zeros((num_segments, values.shape[1]), values.dtype).at[target].set(sums, mode='drop')


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def gather_combine(flat_features: jax.Array, idx: jax.Array, wts: jax.Array, sorted_grads: bool):
  """`sum_n wts[k, i, j, n] * flat_features[idx[k, i, j, n]]` -> `[K, h, w, C]`."""
  del sorted_grads
  if jax.default_backend() == "cpu":
    # Without a buffer for each, XLA:CPU recomputed every index and weight (and the level concatenation) once
    # per channel inside the gather's loop: 4x slower inference (backends/cpu/fusion_barrier.py). The indices
    # are clipped to [0, rows), so the predicate always holds.
    flat_features, idx, wts = fusion_barrier.materialize((flat_features, idx, wts), jnp.min(idx, initial=0) >= 0)
  return jnp.sum(wts[..., None] * flat_features[idx], axis=3)


def _gather_combine_fwd(flat_features, idx, wts, sorted_grads):
  return gather_combine(flat_features, idx, wts, sorted_grads), (idx, wts, flat_features.shape[0])


def _scatter_tap_by_tap(idx: jax.Array, wts: jax.Array, g: jax.Array, rows: int) -> jax.Array:
  """`[rows, C]` sums of every tap's `wts * g`, one tap position at a time (a scan over the last axis of `idx`).

  The one-shot form wrote all K x h x w x taps contributions (205 MB for 1,024 RoIs of 7 x 7 x 16 taps x 64
  channels) before scatter-adding them: 66 ms on a 2-core x86 against 20 ms this way, where each tap's
  contributions stay small and the gradient table stays in cache.
  """
  def add_tap(grad, tap):
    tap_idx, tap_wts = tap
    return grad.at[tap_idx.reshape(-1)].add((tap_wts[..., None] * g).reshape(-1, g.shape[-1])), None

  grad, _ = jax.lax.scan(add_tap, jnp.zeros((rows, g.shape[-1]), g.dtype),
                         (jnp.moveaxis(idx, -1, 0), jnp.moveaxis(wts, -1, 0)))
  return grad


def _gather_combine_bwd(sorted_grads, res, g):
  idx, wts, rows = res
  no_grads = (np.zeros(idx.shape, jax.dtypes.float0), jnp.zeros_like(wts))
  if not sorted_grads and jax.default_backend() == "cpu":
    return (_scatter_tap_by_tap(idx, wts, g, rows), *no_grads)
  contrib = (wts[..., None] * g[..., None, :]).reshape(-1, g.shape[-1])
  flat_idx = idx.reshape(-1)
  if sorted_grads:
    grad = deterministic_segment_sum(contrib, flat_idx, rows)
  else:
    grad = jnp.zeros((rows, g.shape[-1]), g.dtype).at[flat_idx].add(contrib)
  return (grad, *no_grads)


gather_combine.defvjp(_gather_combine_fwd, _gather_combine_bwd)


def _max_grid(boxes, spatial_scale, output_size, sampling_ratio, aligned, max_sampling_ratio):
  if sampling_ratio > 0:
    return sampling_ratio, sampling_ratio
  if max_sampling_ratio is not None:
    return int(max_sampling_ratio), int(max_sampling_ratio)
  if not checks.is_concrete(boxes):
    raise UserError('roi_align with adaptive sampling (sampling_ratio <= 0) under jit needs a static bound: '
                    'pass sampling_ratio > 0 or max_sampling_ratio=N (bins needing more samples use N).')
  if boxes.shape[0] == 0:
    return 1, 1
  _, _, _, _, gy, gx = roi_geometry(jnp.asarray(boxes), spatial_scale, output_size, -1, aligned)
  return max(int(np.max(gy)), 1), max(int(np.max(gx)), 1)


def reference_roi_align(features, boxes, box_batch_index, output_size, spatial_scale, sampling_ratio,
                        aligned, max_grid, sorted_grads):
  """The jnp RoIAlign (static arguments already resolved, see `roi_align`)."""
  b, h, w, c = features.shape
  if boxes.shape[0] == 0:
    return jnp.zeros((0, *output_size, c), features.dtype)
  sampling = roi_sampling(jax.lax.stop_gradient(boxes), box_batch_index, spatial_scale, h, w, 0, output_size,
                          sampling_ratio, aligned, max_grid)
  return gather_sampled(features.reshape(b * h * w, c), sampling, output_size, max_grid, sorted_grads)


def gather_sampled(flat_features: jax.Array, sampling: Sampling, output_size: tuple[int, int],
                   max_grid: tuple[int, int], sorted_grads: bool) -> jax.Array:
  """RoIAlign of `flat_features [rows, C]` (maps flattened and stacked) at `sampling` -> `[K, h, w, C]`."""
  idx, wts = sample_plan(sampling, output_size, max_grid, flat_features.shape[0])
  return gather_combine(flat_features, idx, wts.astype(flat_features.dtype), sorted_grads)


def roi_align(features: jax.Array, boxes: jax.Array, box_batch_index: jax.Array,
              output_size: int | tuple[int, int], spatial_scale: float = 1.0, sampling_ratio: int = -1,
              aligned: bool = False, max_sampling_ratio: int | None = None, implementation: str = 'auto',
              deterministic_scatter: bool | None = None) -> jax.Array:
  """RoIAlign with the semantics of `torchvision.ops.roi_align`, on NHWC features.

  Args:
    features: `[B, H, W, C]` feature maps.
    boxes: `[K, 4]` xyxy boxes in input-image pixels.
    box_batch_index: `[K]` int, the batch element of each box.
    output_size: (h, w) of each output, or one int.
    spatial_scale: feature pixels per input pixel (1 / stride).
    sampling_ratio: samples per bin along each axis; <= 0 means adaptive, ceil(roi size / output size).
    aligned: shift boxes by -0.5 pixel (the corrected Detectron2 form).
    max_sampling_ratio: static cap on the adaptive grid; needed for adaptive sampling under jit (with
      concrete boxes the exact maximum is used).
    implementation: 'auto' (Pallas kernel on GPU/TPU), 'reference', or 'pallas' (interpret mode on CPU).
    deterministic_scatter: sorted (atomic-free) backward pass; defaults to True on GPU only.

  Returns:
    `[K, h, w, C]` pooled features.

  Example:
    >>> feats = jnp.ones((1, 32, 32, 8))                     # stride-4 map of a 128x128 image
    >>> roi_align(feats, jnp.array([[8., 8, 72, 40]]), jnp.array([0]), (7, 7), 0.25, 2).shape
    (1, 7, 7, 8)
  """
  oh, ow = check_roi_inputs(features, boxes, box_batch_index, output_size)
  features = jnp.asarray(features)
  boxes = jnp.asarray(boxes)
  max_grid = _max_grid(boxes, spatial_scale, (oh, ow), sampling_ratio, aligned, max_sampling_ratio)
  if deterministic_scatter is None:
    deterministic_scatter = dispatch.on_gpu()
  use_pallas, interpret = dispatch.resolve_implementation(implementation)
  args = (features, boxes, jnp.asarray(box_batch_index, jnp.int32))
  static = ((oh, ow), float(spatial_scale), int(sampling_ratio), bool(aligned), max_grid,
            bool(deterministic_scatter))
  if use_pallas:
    from vision_jax.ops.pallas import roi_align_kernel  # pylint: disable=g-import-not-at-top
    return roi_align_kernel.roi_align_pallas(*args, *static, interpret=interpret)
  return _roi_align_jit(*args, *static)


_roi_align_jit = jax.jit(reference_roi_align, static_argnums=(3, 4, 5, 6, 7, 8))


def fpn_levels(boxes: jax.Array, min_level: int, max_level: int, canonical_size: float = 224.0,
               canonical_level: int = 4, eps: float = 1e-6) -> jax.Array:
  """FPN level of each box (Lin et al., 2017, eq. 1): floor(k0 + log2(sqrt(area) / 224)), clipped; `[K]`."""
  checks.check_boxes(boxes, ndim=2)
  size = jnp.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
  lvl = jnp.floor(canonical_level + jnp.log2(true_divide(size, canonical_size)) + eps)
  return jnp.clip(lvl, min_level, max_level).astype(jnp.int32)


def multilevel_roi_align(features: Sequence[jax.Array], boxes: jax.Array, box_batch_index: jax.Array,
                         output_size: int | tuple[int, int], levels: Sequence[int] = (2, 3, 4, 5),
                         sampling_ratio: int = 2, aligned: bool = False, canonical_size: float = 224.0,
                         canonical_level: int = 4, max_sampling_ratio: int | None = None,
                         implementation: str = 'auto',
                         deterministic_scatter: bool | None = None) -> tuple[jax.Array, jax.Array]:
  """RoIAlign over an FPN pyramid: each box is pooled from the level chosen by `fpn_levels` only.

  The maps are flattened into one `[rows, C]` matrix and every box samples its own level's block of rows
  (its own scale, size and offset), so the cost is one RoIAlign per box whatever the number of levels, with
  static shapes. This is `torchvision.ops.MultiScaleRoIAlign` with scales 2**-level.

  Args:
    features: one `[B, H_l, W_l, C]` map per level in `levels`, level l having stride 2**l.
    boxes: `[K, 4]` xyxy boxes in input pixels.
    box_batch_index: `[K]` batch element of each box.
    output_size: (h, w) or int.
    levels: pyramid levels of `features` (e.g. P2..P5), consecutive and increasing.
    sampling_ratio: samples per bin per axis (<= 0 adaptive, then see `roi_align`'s max_sampling_ratio).
    aligned: half-pixel correction.
    canonical_size: box size mapped to `canonical_level` (224 at level 4 in the FPN paper).
    canonical_level: k0.
    max_sampling_ratio: see `roi_align`.
    implementation: see `roi_align`.
    deterministic_scatter: see `roi_align`.

  Returns:
    `[K, h, w, C]` pooled features and the `[K]` level of each box.
  """
  levels = tuple(int(l) for l in levels)
  if len(features) != len(levels):
    raise UserError(f'multilevel_roi_align got {len(features)} feature maps for {len(levels)} levels: pass '
                    'one map per level.')
  if levels != tuple(range(levels[0], levels[0] + len(levels))):
    raise UserError(f'multilevel_roi_align levels must be consecutive and increasing; got {levels}.')
  features = [jnp.asarray(f) for f in features]
  oh, ow = check_roi_inputs(features[0], boxes, box_batch_index, output_size)
  bsz, chans = features[0].shape[0], features[0].shape[-1]
  for f in features:
    if jnp.ndim(f) != 4 or (f.shape[0], f.shape[-1]) != (bsz, chans):
      raise UserError(f'multilevel_roi_align maps must all be [{bsz}, H, W, {chans}]; got '
                      f'{[tuple(f.shape) for f in features]}: pass the same batch and channels at every level.')
  boxes = jnp.asarray(boxes)
  lvl = fpn_levels(boxes, levels[0], levels[-1], canonical_size, canonical_level)
  pos = lvl - levels[0]
  rows = [bsz * f.shape[1] * f.shape[2] for f in features]
  scale = jnp.asarray([2.0**-l for l in levels], jnp.float32)[pos]
  height = jnp.asarray([f.shape[1] for f in features], jnp.int32)[pos]
  width = jnp.asarray([f.shape[2] for f in features], jnp.int32)[pos]
  offset = jnp.asarray(np.cumsum([0] + rows[:-1]), jnp.int32)[pos]
  max_grid = _max_grid(boxes, scale, (oh, ow), sampling_ratio, aligned, max_sampling_ratio)
  if boxes.shape[0] == 0:
    return jnp.zeros((0, oh, ow, chans), features[0].dtype), lvl
  sampling = roi_sampling(jax.lax.stop_gradient(boxes), box_batch_index, scale, height, width, offset, (oh, ow),
                          sampling_ratio, aligned, max_grid)
  flat = jnp.concatenate([f.reshape(-1, chans) for f in features])
  if deterministic_scatter is None:
    deterministic_scatter = dispatch.on_gpu()
  use_pallas, interpret = dispatch.resolve_implementation(implementation)
  if use_pallas:
    from vision_jax.ops.pallas import roi_align_kernel  # pylint: disable=g-import-not-at-top
    out = roi_align_kernel.roi_align_sampled_pallas(flat, sampling, (oh, ow), max_grid,
                                                     bool(deterministic_scatter), interpret=interpret)
  else:
    out = _gather_sampled_jit(flat, sampling, (oh, ow), max_grid, bool(deterministic_scatter))
  return out, lvl


_gather_sampled_jit = jax.jit(gather_sampled, static_argnums=(2, 3, 4))

