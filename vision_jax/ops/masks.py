"""Mask R-CNN's mask targets and mask pasting, with torchvision's conventions.

* `project_masks_on_boxes`: the target of a proposal is the RoIAlign (M x M, spatial scale 1, adaptive sampling,
  `aligned=False`) of its matched ground-truth mask (torchvision's `project_masks_on_boxes`).
* `paste_masks_in_image`: each M x M mask is zero-padded by 1 pixel, its box is scaled by (M + 2) / M about its
  centre and truncated to integers (toward zero), the padded mask is resized bilinearly (half-pixel centres) to
  (x2 - x1 + 1) x (y2 - y1 + 1) pixels and written at (x1, y1), clipped to the image (torchvision's
  `paste_masks_in_image`). Computed per output pixel, so shapes are static.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vision_jax.ops.roi_align import roi_align, true_divide


def project_masks_on_boxes(gt_masks: jax.Array, boxes: jax.Array, matched_idxs: jax.Array,
                           size: int = 28) -> jax.Array:
  """Mask targets: RoIAlign of each box's matched ground-truth mask.

  Args:
    gt_masks: [G, H, W] ground-truth masks (0/1, any float or bool dtype).
    boxes: [K, 4] xyxy proposals in the masks' pixels.
    matched_idxs: [K] int index into `gt_masks` of each proposal's ground truth.
    size: M, the target's side (28).

  Returns:
    [K, M, M] float32 targets in [0, 1].
  """
  features = jnp.asarray(gt_masks, jnp.float32)[..., None]
  # Adaptive sampling uses ceil(box side / M) samples; boxes inside the image need at most ceil(side / M).
  bound = max(1, math.ceil(max(features.shape[1:3]) / size))
  out = roi_align(features, boxes, jnp.asarray(matched_idxs, jnp.int32), (size, size), 1.0, -1, False,
                  max_sampling_ratio=bound)
  return out[..., 0]


def expand_boxes(boxes: jax.Array, scale: float) -> jax.Array:
  """Scales xyxy boxes [..., 4] about their centres by `scale` (torchvision's `expand_boxes`, float32)."""
  boxes = boxes.astype(jnp.float32)
  w_half = (boxes[..., 2] - boxes[..., 0]) * 0.5 * jnp.float32(scale)
  h_half = (boxes[..., 3] - boxes[..., 1]) * 0.5 * jnp.float32(scale)
  x_c = (boxes[..., 2] + boxes[..., 0]) * 0.5
  y_c = (boxes[..., 3] + boxes[..., 1]) * 0.5
  return jnp.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=-1)


def _taps(local: jax.Array, in_size: int, out_size: jax.Array):
  """Bilinear (align_corners=False) taps of output pixels `local` resized from `in_size` to `out_size`."""
  scale = true_divide(jnp.float32(in_size), out_size.astype(jnp.float32))
  src = jnp.maximum(scale * (local.astype(jnp.float32) + 0.5) - 0.5, 0.0)
  i0 = jnp.floor(src).astype(jnp.int32)
  i1 = i0 + (i0 < in_size - 1).astype(jnp.int32)
  lam = src - i0.astype(jnp.float32)
  return jnp.clip(i0, 0, in_size - 1), jnp.clip(i1, 0, in_size - 1), 1.0 - lam, lam


def _paste_one(mask: jax.Array, box: jax.Array, height: int, width: int) -> jax.Array:
  """One padded mask [P, P] pasted at integer box [4] into a [height, width] image."""
  p = mask.shape[0]
  x0, y0, x1, y1 = box[0], box[1], box[2], box[3]
  w = jnp.maximum(x1 - x0 + 1, 1)
  h = jnp.maximum(y1 - y0 + 1, 1)
  ys, xs = jnp.arange(height, dtype=jnp.int32), jnp.arange(width, dtype=jnp.int32)
  ya, yb, wya, wyb = _taps(ys - y0, p, h)
  xa, xb, wxa, wxb = _taps(xs - x0, p, w)
  top = wxa[None, :] * mask[ya][:, xa] + wxb[None, :] * mask[ya][:, xb]
  bottom = wxa[None, :] * mask[yb][:, xa] + wxb[None, :] * mask[yb][:, xb]
  value = wya[:, None] * top + wyb[:, None] * bottom
  inside = ((ys >= y0) & (ys < y1 + 1))[:, None] & ((xs >= x0) & (xs < x1 + 1))[None, :]
  return jnp.where(inside, value, 0.0)


def paste_masks_in_image(masks: jax.Array, boxes: jax.Array, image_size: tuple[int, int],
                         padding: int = 1) -> jax.Array:
  """Pastes per-detection mask probabilities into full-image masks (torchvision's `paste_masks_in_image`).

  Args:
    masks: [D, M, M] mask probabilities (or logits; pasting is linear).
    boxes: [D, 4] xyxy detection boxes in the output image's pixels.
    image_size: static (height, width) of the output.
    padding: zero border added to each mask before resizing (1).

  Returns:
    [D, height, width] float32 masks (0 outside each box).
  """
  height, width = int(image_size[0]), int(image_size[1])
  m = masks.shape[-1]
  padded = jnp.pad(jnp.asarray(masks, jnp.float32), ((0, 0), (padding, padding), (padding, padding)))
  # torch's `.to(int64)` truncates toward zero.
  int_boxes = jnp.trunc(expand_boxes(boxes, (m + 2 * padding) / m)).astype(jnp.int32)
  return jax.vmap(_paste_one, in_axes=(0, 0, None, None))(padded, int_boxes, height, width)
