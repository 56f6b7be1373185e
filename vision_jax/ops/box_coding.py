"""Box encodings that detectors regress: Faster R-CNN deltas, SSD offsets and YOLO v2/v3 offsets.

Every `*_encode` is inverted by its `*_decode` (round trip up to float error); all work on `[..., 4]`
arrays with any leading shape and broadcast anchors against boxes.
"""

import math
from typing import Sequence

import jax
import jax.numpy as jnp

from vision_jax.ops import checks

# Faster R-CNN clamps decoded log-scales at log(1000 / 16) so exp() cannot overflow.
DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


def _centre_size(boxes: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  w = boxes[..., 2] - boxes[..., 0]
  h = boxes[..., 3] - boxes[..., 1]
  return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


def _from_centre_size(cx, cy, w, h) -> jax.Array:
  return jnp.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def faster_rcnn_encode(anchors: jax.Array, boxes: jax.Array,
                       weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> jax.Array:
  """Faster R-CNN regression targets (Ren et al., 2015, eq. 2) of `boxes` relative to `anchors`.

  t = (wx (x - xa) / wa, wy (y - ya) / ha, ww log(w / wa), wh log(h / ha)) on box centres and sizes.

  Args:
    anchors: `[..., 4]` xyxy reference boxes (anchors or proposals).
    boxes: `[..., 4]` xyxy target boxes, broadcastable against `anchors`.
    weights: (wx, wy, ww, wh) multipliers, e.g. (10, 10, 5, 5) in the second stage.

  Returns:
    `[..., 4]` deltas.
  """
  checks.check_boxes(anchors, 'anchors')
  checks.check_boxes(boxes)
  wx, wy, ww, wh = weights
  ax, ay, aw, ah = _centre_size(anchors)
  bx, by, bw, bh = _centre_size(boxes)
  return jnp.stack([wx * (bx - ax) / aw, wy * (by - ay) / ah,
                    ww * jnp.log(bw / aw), wh * jnp.log(bh / ah)], axis=-1)


def faster_rcnn_decode(anchors: jax.Array, deltas: jax.Array,
                       weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                       scale_clamp: float = DEFAULT_SCALE_CLAMP) -> jax.Array:
  """Inverse of `faster_rcnn_encode`: `deltas [..., 4]` on `anchors [..., 4]` -> xyxy boxes `[..., 4]`.

  The log-scale deltas are clamped at `scale_clamp` (log(1000/16)) before exp, as in Faster R-CNN.
  """
  checks.check_boxes(anchors, 'anchors')
  checks.check_boxes(deltas, 'deltas')
  wx, wy, ww, wh = weights
  ax, ay, aw, ah = _centre_size(anchors)
  dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
  dw = jnp.minimum(deltas[..., 2] / ww, scale_clamp)
  dh = jnp.minimum(deltas[..., 3] / wh, scale_clamp)
  return _from_centre_size(ax + dx * aw, ay + dy * ah, aw * jnp.exp(dw), ah * jnp.exp(dh))


def ssd_encode(anchors: jax.Array, boxes: jax.Array,
               variances: Sequence[float] = (0.1, 0.1, 0.2, 0.2),
               means: Sequence[float] = (0.0, 0.0, 0.0, 0.0)) -> jax.Array:
  """SSD offsets (Liu et al., 2016) in the lectures' form.

  t = (((xb - xa) / wa - mu_x) / sigma_x, ((yb - ya) / ha - mu_y) / sigma_y,
       (log(wb / wa) - mu_w) / sigma_w, (log(hb / ha) - mu_h) / sigma_h) on centres and sizes.

  Args:
    anchors: `[..., 4]` xyxy default boxes.
    boxes: `[..., 4]` xyxy ground-truth boxes, broadcastable against `anchors`.
    variances: (sigma_x, sigma_y, sigma_w, sigma_h); SSD uses (0.1, 0.1, 0.2, 0.2).
    means: (mu_x, mu_y, mu_w, mu_h); 0 in SSD.

  Returns:
    `[..., 4]` offsets.
  """
  checks.check_boxes(anchors, 'anchors')
  checks.check_boxes(boxes)
  ax, ay, aw, ah = _centre_size(anchors)
  bx, by, bw, bh = _centre_size(boxes)
  raw = jnp.stack([(bx - ax) / aw, (by - ay) / ah, jnp.log(bw / aw), jnp.log(bh / ah)], axis=-1)
  return (raw - jnp.asarray(means, raw.dtype)) / jnp.asarray(variances, raw.dtype)


def ssd_decode(anchors: jax.Array, offsets: jax.Array,
               variances: Sequence[float] = (0.1, 0.1, 0.2, 0.2),
               means: Sequence[float] = (0.0, 0.0, 0.0, 0.0)) -> jax.Array:
  """Inverse of `ssd_encode`: `offsets [..., 4]` on `anchors [..., 4]` -> xyxy boxes `[..., 4]`."""
  checks.check_boxes(anchors, 'anchors')
  checks.check_boxes(offsets, 'offsets')
  raw = offsets * jnp.asarray(variances, offsets.dtype) + jnp.asarray(means, offsets.dtype)
  ax, ay, aw, ah = _centre_size(anchors)
  return _from_centre_size(ax + raw[..., 0] * aw, ay + raw[..., 1] * ah,
                           aw * jnp.exp(raw[..., 2]), ah * jnp.exp(raw[..., 3]))


def yolo_decode(offsets: jax.Array, cell_xy: jax.Array, anchor_wh: jax.Array,
                stride: float) -> jax.Array:
  """YOLO v2/v3 box decoding (Redmon & Farhadi, 2017, fig. 3).

  bx = (sigmoid(tx) + cx) * stride, by = (sigmoid(ty) + cy) * stride, bw = pw exp(tw), bh = ph exp(th).

  Args:
    offsets: `[..., 4]` raw predictions (tx, ty, tw, th).
    cell_xy: `[..., 2]` integer cell column and row (cx, cy), broadcastable against `offsets`.
    anchor_wh: `[..., 2]` anchor (prior) width and height in pixels (pw, ph).
    stride: pixels per grid cell.

  Returns:
    `[..., 4]` xyxy boxes in pixels.
  """
  checks.check_boxes(offsets, 'offsets')
  cx = (jax.nn.sigmoid(offsets[..., 0]) + cell_xy[..., 0]) * stride
  cy = (jax.nn.sigmoid(offsets[..., 1]) + cell_xy[..., 1]) * stride
  w = anchor_wh[..., 0] * jnp.exp(offsets[..., 2])
  h = anchor_wh[..., 1] * jnp.exp(offsets[..., 3])
  return _from_centre_size(cx, cy, w, h)


def yolo_encode(boxes: jax.Array, cell_xy: jax.Array, anchor_wh: jax.Array, stride: float,
                eps: float = 1e-6) -> jax.Array:
  """Inverse of `yolo_decode`: xyxy pixel `boxes [..., 4]` -> raw offsets (tx, ty, tw, th) `[..., 4]`.

  The centre's position inside its cell is clipped to [eps, 1 - eps] before the logit.
  """
  checks.check_boxes(boxes)
  bx, by, bw, bh = _centre_size(boxes)
  fx = jnp.clip(bx / stride - cell_xy[..., 0], eps, 1 - eps)
  fy = jnp.clip(by / stride - cell_xy[..., 1], eps, 1 - eps)
  return jnp.stack([jnp.log(fx) - jnp.log1p(-fx), jnp.log(fy) - jnp.log1p(-fy),
                    jnp.log(bw / anchor_wh[..., 0]), jnp.log(bh / anchor_wh[..., 1])], axis=-1)
