"""Pallas kernel for the RoIAlign forward pass (the computation of `ops.roi_align` with torchvision's rules).

One program per RoI. The RoI's geometry (start, bin size, sampling grid, batch offset, 1 / count) is
computed outside and read as 8 scalars; the program walks its h x w bins and each bin's grid_y x grid_x
sample points, loads the 4 neighbouring C-vectors of each sample straight from the feature map and
accumulates them in registers, then writes one C-vector per bin. Nothing of size K x samples x C is
materialized (the jnp reference gathers all taps at once), and the adaptive grid needs no static bound
because loop trip counts are dynamic. The backward pass is the reference's deterministic scatter.
Tested on CPU in interpret mode only; GPU/TPU lowering is untested in this repository.
"""

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from vision_jax.ops.roi_align import bilinear_taps
from vision_jax.ops.roi_align import reference_roi_align
from vision_jax.ops.roi_align import roi_geometry


def _kernel(roi_ref, feat_ref, out_ref, *, out_w, num_bins, hgt, wid):
  sy, sx, by, bx = roi_ref[0, 0], roi_ref[0, 1], roi_ref[0, 2], roi_ref[0, 3]
  gy = roi_ref[0, 4].astype(jnp.int32)
  gx = roi_ref[0, 5].astype(jnp.int32)
  base = roi_ref[0, 6].astype(jnp.int32)
  inv_count = roi_ref[0, 7]
  chans = feat_ref.shape[1]

  def load(y, x):
    return feat_ref[pl.ds(base + y * wid + x, 1), :].astype(jnp.float32)

  def do_bin(b, carry):
    ph = (b // out_w).astype(jnp.float32)
    pw = (b % out_w).astype(jnp.float32)

    def row(iy, acc):
      y = sy + ph * by + ((iy.astype(jnp.float32) + 0.5) * by) / gy.astype(jnp.float32)
      ylo, yhi, wylo, wyhi = bilinear_taps(y, hgt)

      def col(ix, acc):
        x = sx + pw * bx + ((ix.astype(jnp.float32) + 0.5) * bx) / gx.astype(jnp.float32)
        xlo, xhi, wxlo, wxhi = bilinear_taps(x, wid)
        return (acc + (wylo * wxlo) * load(ylo, xlo) + (wylo * wxhi) * load(ylo, xhi)
                + (wyhi * wxlo) * load(yhi, xlo) + (wyhi * wxhi) * load(yhi, xhi))

      return jax.lax.fori_loop(0, gx, col, acc)

    acc = jax.lax.fori_loop(0, gy, row, jnp.zeros((1, chans), jnp.float32))
    out_ref[0, pl.ds(b, 1), :] = (acc * inv_count).astype(out_ref.dtype)
    return carry

  jax.lax.fori_loop(0, num_bins, do_bin, 0)


def _forward(features, boxes, box_batch_index, output_size, spatial_scale, sampling_ratio, aligned,
             max_grid, interpret):
  bsz, hgt, wid, chans = features.shape
  oh, ow = output_size
  k = boxes.shape[0]
  sy, sx, by, bx, gy, gx = roi_geometry(boxes, spatial_scale, output_size, sampling_ratio, aligned)
  if max_grid is not None:
    gy, gx = jnp.minimum(gy, max_grid[0]), jnp.minimum(gx, max_grid[1])
  count = jnp.maximum(gy * gx, 1).astype(jnp.float32)
  base = box_batch_index.astype(jnp.float32) * (hgt * wid)
  rois = jnp.stack([sy, sx, by, bx, gy.astype(jnp.float32), gx.astype(jnp.float32), base, 1.0 / count], -1)
  kernel = functools.partial(_kernel, out_w=ow, num_bins=oh * ow, hgt=hgt, wid=wid)
  out = pl.pallas_call(
      kernel,
      grid=(k,),
      in_specs=[pl.BlockSpec((1, 8), lambda i: (i, 0)),
                pl.BlockSpec((bsz * hgt * wid, chans), lambda i: (0, 0))],
      out_specs=pl.BlockSpec((1, oh * ow, chans), lambda i: (i, 0, 0)),
      out_shape=jax.ShapeDtypeStruct((k, oh * ow, chans), features.dtype),
      interpret=interpret,
  )(rois, features.reshape(bsz * hgt * wid, chans))
  return out.reshape(k, oh, ow, chans)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6, 7, 8, 9))
def _roi_align_pallas(features, boxes, box_batch_index, output_size, spatial_scale, sampling_ratio,
                      aligned, max_grid, sorted_grads, interpret):
  del sorted_grads
  return _forward(features, boxes, box_batch_index, output_size, spatial_scale, sampling_ratio, aligned,
                  max_grid, interpret)


def _fwd(features, boxes, box_batch_index, output_size, spatial_scale, sampling_ratio, aligned, max_grid,
         sorted_grads, interpret):
  out = _roi_align_pallas(features, boxes, box_batch_index, output_size, spatial_scale, sampling_ratio,
                          aligned, max_grid, sorted_grads, interpret)
  return out, (features, boxes, box_batch_index)


def _bwd(output_size, spatial_scale, sampling_ratio, aligned, max_grid, sorted_grads, interpret, res, g):
  del interpret
  features, boxes, box_batch_index = res
  _, vjp = jax.vjp(lambda f: reference_roi_align(
      f, boxes, box_batch_index, output_size, spatial_scale, sampling_ratio, aligned, max_grid,
      sorted_grads), features)
  (df,) = vjp(g)
  return df, jnp.zeros_like(boxes), None


_roi_align_pallas.defvjp(_fwd, _bwd)


def roi_align_pallas(features: jax.Array, boxes: jax.Array, box_batch_index: jax.Array,
                     output_size: tuple[int, int], spatial_scale: float, sampling_ratio: int, aligned: bool,
                     max_grid: tuple[int, int], sorted_grads: bool, interpret: bool = False) -> jax.Array:
  """RoIAlign `[B, H, W, C]`, `[K, 4]`, `[K]` -> `[K, h, w, C]` with the Pallas kernel (see `ops.roi_align`)."""
  if boxes.shape[0] == 0:
    return jnp.zeros((0, *output_size, features.shape[-1]), features.dtype)
  return _roi_align_pallas(features, boxes, box_batch_index, output_size, spatial_scale, sampling_ratio,
                           aligned, max_grid, sorted_grads, interpret)
