"""Pallas kernel for the RoIAlign forward pass (the computation of `ops.roi_align` with torchvision's rules).

One program per RoI. The RoI's sampling (start, bin size, sampling grid, its map's height, width and first
flat row, 1 / count) is computed outside and read as 10 scalars; the program walks its h x w bins and each
bin's grid_y x grid_x sample points, loads the 4 neighbouring C-vectors of each sample straight from the flat
feature matrix and accumulates them in registers, then writes one C-vector per bin. Nothing of size
K x samples x C is materialized (the jnp reference gathers all taps at once), and the adaptive grid needs no
static bound because loop trip counts are dynamic. Because each RoI carries its own map, the same kernel
pools an FPN pyramid whose levels are stacked in one matrix (`ops.multilevel_roi_align`). The backward pass
is the reference's deterministic scatter.

On GPU the kernel is lowered through Triton (see `pallas.gpu_params`): the bins are walked by two nested
loops (no integer division in the kernel) and the channels are padded to a power of two, as Triton's arrays
must be. Tested on CPU in interpret mode and lowered for CUDA in the tests (`tests/ops/test_gpu_lowering.py`);
`python -m vision_jax.tools.accel_check` checks it on an accelerator. On an H200 (session 39) it matched the
reference on a small case.
"""

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from vision_jax.ops.pallas import gpu_params
from vision_jax.ops.roi_align import Sampling
from vision_jax.ops.roi_align import bilinear_taps
from vision_jax.ops.roi_align import gather_sampled
from vision_jax.ops.roi_align import roi_sampling
from vision_jax.ops.roi_align import true_divide

_NUM_SCALARS = 10


def _kernel(roi_ref, feat_ref, out_ref, *, out_h, out_w):
  sy, sx, by, bx = roi_ref[0, 0], roi_ref[0, 1], roi_ref[0, 2], roi_ref[0, 3]
  gy = roi_ref[0, 4].astype(jnp.int32)
  gx = roi_ref[0, 5].astype(jnp.int32)
  hgt = roi_ref[0, 6].astype(jnp.int32)
  wid = roi_ref[0, 7].astype(jnp.int32)
  base = roi_ref[0, 8].astype(jnp.int32)
  inv_count = roi_ref[0, 9]
  chans = feat_ref.shape[1]

  def load(y, x):
    return feat_ref[pl.ds(base + y * wid + x, 1), :].astype(jnp.float32)

  def do_bin(b_y, b_x):
    ph = b_y.astype(jnp.float32)
    pw = b_x.astype(jnp.float32)

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
    out_ref[0, pl.ds(b_y * out_w + b_x, 1), :] = (acc * inv_count).astype(out_ref.dtype)

  def bin_row(b_y, carry):
    def bin_col(b_x, carry):
      do_bin(b_y, b_x)
      return carry
    return jax.lax.fori_loop(0, out_w, bin_col, carry)

  jax.lax.fori_loop(0, out_h, bin_row, 0)


def _forward(flat_features, sampling, output_size, interpret):
  chans = flat_features.shape[1]
  if gpu_params() is not None:  # Triton loads [1, C] rows: C must be a power of two
    flat_features = jnp.pad(flat_features, ((0, 0), (0, (1 << (chans - 1).bit_length()) - chans)))
  rows, padded_chans = flat_features.shape
  oh, ow = output_size
  s = sampling
  k = s.base.shape[0]
  count = jnp.maximum(s.grid_y * s.grid_x, 1).astype(jnp.float32)
  ints = [s.grid_y, s.grid_x, s.height, s.width, s.base]
  rois = jnp.stack([s.start_y, s.start_x, s.bin_y, s.bin_x, *(v.astype(jnp.float32) for v in ints),
                    true_divide(1.0, count)], -1)
  kernel = functools.partial(_kernel, out_h=oh, out_w=ow)
  out = pl.pallas_call(
      kernel,
      grid=(k,),
      in_specs=[pl.BlockSpec((1, _NUM_SCALARS), lambda i: (i, 0)),
                pl.BlockSpec((rows, padded_chans), lambda i: (0, 0))],
      out_specs=pl.BlockSpec((1, oh * ow, padded_chans), lambda i: (i, 0, 0)),
      out_shape=jax.ShapeDtypeStruct((k, oh * ow, padded_chans), flat_features.dtype),
      interpret=interpret,
      compiler_params=gpu_params(),
  )(rois, flat_features)
  return out[:, :, :chans].reshape(k, oh, ow, chans)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _roi_align_pallas(flat_features, sampling, output_size, max_grid, sorted_grads, interpret):
  del max_grid, sorted_grads
  return _forward(flat_features, sampling, output_size, interpret)


def _fwd(flat_features, sampling, output_size, max_grid, sorted_grads, interpret):
  out = _roi_align_pallas(flat_features, sampling, output_size, max_grid, sorted_grads, interpret)
  return out, (flat_features, sampling)


def _bwd(output_size, max_grid, sorted_grads, interpret, res, g):
  del interpret
  flat_features, sampling = res
  _, vjp = jax.vjp(lambda f: gather_sampled(f, sampling, output_size, max_grid, sorted_grads), flat_features)
  (df,) = vjp(g)
  return df, jax.tree.map(lambda _: None, sampling)


_roi_align_pallas.defvjp(_fwd, _bwd)


def roi_align_sampled_pallas(flat_features: jax.Array, sampling: Sampling, output_size: tuple[int, int],
                             max_grid: tuple[int, int], sorted_grads: bool, interpret: bool = False) -> jax.Array:
  """RoIAlign of `flat_features [rows, C]` at `sampling` (see `ops.roi_align.Sampling`) -> `[K, h, w, C]`.

  `max_grid` bounds the grids of the backward pass (the reference's gather plan); the forward loops are
  dynamic.
  """
  return _roi_align_pallas(flat_features, sampling, output_size, max_grid, sorted_grads, interpret)


def roi_align_pallas(features: jax.Array, boxes: jax.Array, box_batch_index: jax.Array,
                     output_size: tuple[int, int], spatial_scale: float, sampling_ratio: int, aligned: bool,
                     max_grid: tuple[int, int], sorted_grads: bool, interpret: bool = False) -> jax.Array:
  """RoIAlign `[B, H, W, C]`, `[K, 4]`, `[K]` -> `[K, h, w, C]` with the Pallas kernel (see `ops.roi_align`)."""
  bsz, hgt, wid, chans = features.shape
  if boxes.shape[0] == 0:
    return jnp.zeros((0, *output_size, chans), features.dtype)
  sampling = roi_sampling(jax.lax.stop_gradient(boxes), box_batch_index, spatial_scale, hgt, wid, 0, output_size,
                          sampling_ratio, aligned, max_grid)
  return roi_align_sampled_pallas(features.reshape(bsz * hgt * wid, chans), sampling, output_size, max_grid,
                                  sorted_grads, interpret)
