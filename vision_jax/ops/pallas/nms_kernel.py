"""Pallas kernel for greedy NMS over score-sorted boxes (the algorithm of `ops.nms.nms_keep_reference`).

One program walks the sorted boxes in tiles of T. For tile k it computes T x T IoU tiles against each earlier
tile j, masked by the keep bits of tile j (suppression by already-kept boxes), then resolves tile k inside
itself by iterating "alive = not suppressed by an alive earlier box" to its fixed point, and stores tile k's
keep bits. Only the keep vector (N int32) and one or two IoU tiles are live, so the suppression state stays on
chip instead of an N x N mask in HBM, and the walk stops once `max_output_size` boxes are kept or after the last
tile that holds a valid box (valid boxes lead the sorted order, so the tiles beyond keep nothing). Sorting
happens before the kernel (kernels cannot sort).

Column and row views of a tile are both needed (a box is tested in rows, suppressors run along columns);
the kernel takes the boxes in both layouts and turns a [T, 1] column into a [1, T] row with an
identity-masked reduction, which every Pallas backend lowers (no transposes, no matmuls of width 1).

On GPU the kernel is lowered through Triton, whatever the default of `jax_pallas_use_mosaic_gpu` (see
`pallas.gpu_params`), so its arrays follow Triton's rules: every loaded or computed array has power-of-two
dimensions, and box coordinates are read as separate [T, 1] / [1, T] ref slices (Triton lowers no value
`slice`). Tested on CPU in interpret mode and lowered for CUDA in the tests (`tests/ops/test_gpu_lowering.py`);
`python -m vision_jax.tools.accel_check` runs it on an accelerator. On an H200 (session 39) it kept the
reference's indices at N=2,000.
"""

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from vision_jax.ops.pallas import gpu_params

# 64: on an H200 (jax 0.11.2, Triton) tiles of 64 and 32 ran and matched the reference at N=2,000, while
# tiles of 128 crashed the process (segmentation fault) before the first result.
DEFAULT_TILE = 64


def _iou_ok(rows, cols, thr):
  """Row boxes (four `[T, 1]` coordinates), column boxes (four `[1, T]`) -> bool `[T, T]`: IoU > thr.

  The operations follow torchvision's order, so the float32 result matches it bit for bit.
  """
  rx1, ry1, rx2, ry2 = rows
  cx1, cy1, cx2, cy2 = cols
  w = jnp.maximum(jnp.minimum(rx2, cx2) - jnp.maximum(rx1, cx1), 0.0)
  h = jnp.maximum(jnp.minimum(ry2, cy2) - jnp.maximum(ry1, cy1), 0.0)
  inter = w * h
  area_r = (rx2 - rx1) * (ry2 - ry1)
  area_c = (cx2 - cx1) * (cy2 - cy1)
  return inter / (area_c + area_r - inter) > thr


def _kernel(boxes_ref, boxes_t_ref, cls_col_ref, cls_row_ref, valid_ref, used_ref, keep_ref, *, tile, thr,
            max_output_size):
  rid = jax.lax.broadcasted_iota(jnp.int32, (tile, tile), 0)
  cid = jax.lax.broadcasted_iota(jnp.int32, (tile, tile), 1)
  eye = rid == cid
  earlier = cid < rid

  def to_row(col):  # [T, 1] int32 -> [1, T] int32
    return jnp.max(jnp.where(eye, col, 0), axis=0, keepdims=True)

  def suppress_mask(k, j):
    rows = [boxes_ref[pl.ds(k * tile, tile), pl.ds(i, 1)] for i in range(4)]
    cols = [boxes_t_ref[pl.ds(i, 1), pl.ds(j * tile, tile)] for i in range(4)]
    same = cls_col_ref[pl.ds(k * tile, tile), :] == cls_row_ref[:, pl.ds(j * tile, tile)]
    return _iou_ok(rows, cols, thr) & same

  keep_ref[...] = jnp.zeros(keep_ref.shape, jnp.int32)

  def do_tile(state):
    k, count = state

    def cross(j, alive):
      kept_j = keep_ref[:, pl.ds(j * tile, tile)]  # [1, T]
      hit = jnp.where(suppress_mask(k, j), kept_j, 0)
      return alive * (1 - jnp.max(hit, axis=1, keepdims=True))

    alive0 = jax.lax.fori_loop(0, k, cross, valid_ref[pl.ds(k * tile, tile), :])
    inner = suppress_mask(k, k) & earlier

    def fix_body(s):
      _, cur = s
      hit = jnp.where(inner, to_row(cur), 0)
      return cur, alive0 * (1 - jnp.max(hit, axis=1, keepdims=True))

    _, alive = jax.lax.while_loop(lambda s: jnp.max(jnp.abs(s[0] - s[1])) > 0, fix_body, (1 - alive0, alive0))
    keep_ref[:, pl.ds(k * tile, tile)] = to_row(alive)
    return k + 1, count + jnp.sum(alive).astype(jnp.int32)  # int32 under jax_enable_x64 too

  used_tiles = used_ref[0, 0]
  jax.lax.while_loop(lambda s: (s[0] < used_tiles) & (s[1] < max_output_size), do_tile,
                     (jnp.int32(0), jnp.int32(0)))


def nms_keep_pallas(boxes: jax.Array, classes: jax.Array, valid: jax.Array, iou_threshold: float,
                    max_output_size: int, tile: int = DEFAULT_TILE, interpret: bool = False) -> jax.Array:
  """Keep mask `[N]` of greedy NMS on score-sorted `boxes [N, 4]`, `classes [N]`, `valid [N]`.

  `iou_threshold` must already be the float32 threshold (see `ops.nms.iou_threshold_f32`).
  """
  n = boxes.shape[0]
  tile = min(tile, max(8, 1 << max(0, (n - 1).bit_length())))
  num_tiles = -(-n // tile)
  npad = 1 << (num_tiles * tile - 1).bit_length()  # whole-array blocks must be powers of two under Triton
  pad = npad - n
  b = jnp.pad(boxes.astype(jnp.float32), ((0, pad), (0, 0)))
  c = jnp.pad(classes.astype(jnp.int32), (0, pad))
  v = jnp.pad(valid.astype(jnp.int32), (0, pad))
  # Tiles up to the last one holding a valid box (0 when none is valid); a [1, 1] array, as every backend loads it.
  last_valid = jnp.max(jnp.where(v > 0, jnp.arange(npad, dtype=jnp.int32), -1))
  used_tiles = ((last_valid + tile) // tile).astype(jnp.int32).reshape(1, 1)
  kernel = functools.partial(_kernel, tile=tile, thr=iou_threshold, max_output_size=max_output_size)
  keep = pl.pallas_call(
      kernel,
      out_shape=jax.ShapeDtypeStruct((1, npad), jnp.int32),
      interpret=interpret,
      compiler_params=gpu_params(),
  )(b, b.T, c[:, None], c[None, :], v[:, None], used_tiles)
  return keep[0, :n] > 0
