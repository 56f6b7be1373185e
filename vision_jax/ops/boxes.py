"""Box formats, areas, clipping and the IoU family (IoU, GIoU, DIoU, CIoU).

Boxes are float arrays with a last axis of 4. The canonical format is xyxy (x1, y1, x2, y2) in pixels;
xywh is (x1, y1, width, height) as in COCO, cxcywh is (centre x, centre y, width, height).
Pairwise functions take `a [N, 4]`, `b [M, 4]` and return `[N, M]`; elementwise functions take two arrays
of the same shape `[..., 4]` and return `[...]`, and are differentiable so `1 - f(a, b)` serves as a loss.
"""

import math

import jax
import jax.numpy as jnp

from vision_jax.errors import UserError
from vision_jax.ops import checks

_FORMATS = ('xyxy', 'xywh', 'cxcywh')


def xyxy_to_xywh(boxes: jax.Array) -> jax.Array:
  """(x1, y1, x2, y2) -> (x1, y1, w, h); `[..., 4]` -> `[..., 4]`."""
  x1, y1, x2, y2 = jnp.moveaxis(boxes, -1, 0)
  return jnp.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)


def xywh_to_xyxy(boxes: jax.Array) -> jax.Array:
  """(x1, y1, w, h) -> (x1, y1, x2, y2); `[..., 4]` -> `[..., 4]`."""
  x, y, w, h = jnp.moveaxis(boxes, -1, 0)
  return jnp.stack([x, y, x + w, y + h], axis=-1)


def xyxy_to_cxcywh(boxes: jax.Array) -> jax.Array:
  """(x1, y1, x2, y2) -> (cx, cy, w, h); `[..., 4]` -> `[..., 4]`."""
  x1, y1, x2, y2 = jnp.moveaxis(boxes, -1, 0)
  return jnp.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def cxcywh_to_xyxy(boxes: jax.Array) -> jax.Array:
  """(cx, cy, w, h) -> (x1, y1, x2, y2); `[..., 4]` -> `[..., 4]`."""
  cx, cy, w, h = jnp.moveaxis(boxes, -1, 0)
  return jnp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def convert_boxes(boxes: jax.Array, in_fmt: str, out_fmt: str) -> jax.Array:
  """Converts `boxes [..., 4]` between 'xyxy', 'xywh' and 'cxcywh'.

  Args:
    boxes: `[..., 4]` boxes in `in_fmt`.
    in_fmt: one of 'xyxy', 'xywh', 'cxcywh'.
    out_fmt: one of 'xyxy', 'xywh', 'cxcywh'.

  Returns:
    `[..., 4]` boxes in `out_fmt`.
  """
  for fmt in (in_fmt, out_fmt):
    if fmt not in _FORMATS:
      raise UserError(f'unknown box format {fmt!r}: use one of {", ".join(_FORMATS)}.')
  checks.check_boxes(boxes)
  boxes = jnp.asarray(boxes)
  if in_fmt == out_fmt:
    return boxes
  xyxy = {'xyxy': lambda b: b, 'xywh': xywh_to_xyxy, 'cxcywh': cxcywh_to_xyxy}[in_fmt](boxes)
  return {'xyxy': lambda b: b, 'xywh': xyxy_to_xywh, 'cxcywh': xyxy_to_cxcywh}[out_fmt](xyxy)


def box_area(boxes: jax.Array) -> jax.Array:
  """Area of xyxy `boxes [..., 4]` -> `[...]` ((x2 - x1) * (y2 - y1), as torchvision)."""
  checks.check_boxes(boxes)
  return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def clip_boxes(boxes: jax.Array, image_size: tuple[int, int]) -> jax.Array:
  """Clips xyxy `boxes [..., 4]` to an image of `image_size = (height, width)`; returns `[..., 4]`."""
  checks.check_boxes(boxes)
  h, w = image_size
  x1, y1, x2, y2 = jnp.moveaxis(boxes, -1, 0)
  return jnp.stack([jnp.clip(x1, 0, w), jnp.clip(y1, 0, h), jnp.clip(x2, 0, w), jnp.clip(y2, 0, h)], -1)


def remove_small_boxes(boxes: jax.Array, min_size: float) -> jax.Array:
  """Mask `[...]` of xyxy `boxes [..., 4]` whose width and height are both >= `min_size`."""
  checks.check_boxes(boxes)
  return ((boxes[..., 2] - boxes[..., 0]) >= min_size) & ((boxes[..., 3] - boxes[..., 1]) >= min_size)


def _inter_union(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Intersection and union areas of broadcastable xyxy boxes `a`, `b` -> two `[...]` arrays."""
  lt = jnp.maximum(a[..., :2], b[..., :2])
  rb = jnp.minimum(a[..., 2:], b[..., 2:])
  wh = jnp.maximum(rb - lt, 0)
  inter = wh[..., 0] * wh[..., 1]
  area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
  area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
  return inter, area_a + area_b - inter


def _enclosing(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Width and height of the smallest box enclosing broadcastable `a` and `b` -> two `[...]` arrays."""
  lt = jnp.minimum(a[..., :2], b[..., :2])
  rb = jnp.maximum(a[..., 2:], b[..., 2:])
  wh = jnp.maximum(rb - lt, 0)
  return wh[..., 0], wh[..., 1]


def _iou(a, b, eps):
  inter, union = _inter_union(a, b)
  return inter / (union + eps), union


def _giou(a, b, eps):
  iou, union = _iou(a, b, eps)
  ew, eh = _enclosing(a, b)
  hull = ew * eh
  return iou - (hull - union) / (hull + eps)


def _centre_term(a, b, eps):
  """Squared centre distance over squared enclosing diagonal (the DIoU penalty)."""
  ew, eh = _enclosing(a, b)
  diag = ew**2 + eh**2 + eps
  dx = (a[..., 0] + a[..., 2] - b[..., 0] - b[..., 2]) / 2
  dy = (a[..., 1] + a[..., 3] - b[..., 1] - b[..., 3]) / 2
  return (dx**2 + dy**2) / diag


def _diou(a, b, eps):
  iou, _ = _iou(a, b, eps)
  return iou - _centre_term(a, b, eps)


def _ciou(a, b, eps):
  iou, _ = _iou(a, b, eps)
  wa, ha = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1]
  wb, hb = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
  v = (4 / math.pi**2) * (jnp.arctan(wb / (hb + eps)) - jnp.arctan(wa / (ha + eps)))**2
  alpha = jax.lax.stop_gradient(v / (1 - iou + v + eps))
  return iou - _centre_term(a, b, eps) - alpha * v


def _pairwise(fn, a, b, eps):
  checks.check_boxes(a, 'boxes1', ndim=2)
  checks.check_boxes(b, 'boxes2', ndim=2)
  return fn(jnp.asarray(a)[:, None, :], jnp.asarray(b)[None, :, :], eps)


def _elementwise(fn, a, b, eps):
  checks.check_boxes(a, 'boxes1')
  checks.check_boxes(b, 'boxes2')
  if jnp.shape(a) != jnp.shape(b):
    raise UserError(f'elementwise IoU needs boxes of the same shape; got {jnp.shape(a)} and '
                    f'{jnp.shape(b)}: use the pairwise form (box_iou) for all pairs.')
  return fn(jnp.asarray(a), jnp.asarray(b), eps)


def box_iou(boxes1: jax.Array, boxes2: jax.Array, eps: float = 0.0) -> jax.Array:
  """Pairwise intersection over union of xyxy boxes.

  Args:
    boxes1: `[N, 4]` xyxy boxes.
    boxes2: `[M, 4]` xyxy boxes.
    eps: added to the union (0 gives torchvision's exact value; NaN for two empty boxes).

  Returns:
    `[N, M]` IoU.
  """
  return _pairwise(lambda a, b, e: _iou(a, b, e)[0], boxes1, boxes2, eps)


def generalized_box_iou(boxes1: jax.Array, boxes2: jax.Array, eps: float = 0.0) -> jax.Array:
  """Pairwise generalized IoU (Rezatofighi et al., 2019): IoU - (hull - union) / hull; `[N, M]`."""
  checks.check_xyxy_valid(boxes1, 'boxes1')
  checks.check_xyxy_valid(boxes2, 'boxes2')
  return _pairwise(_giou, boxes1, boxes2, eps)


def distance_box_iou(boxes1: jax.Array, boxes2: jax.Array, eps: float = 1e-7) -> jax.Array:
  """Pairwise distance IoU (Zheng et al., 2020): IoU - centre distance^2 / hull diagonal^2; `[N, M]`."""
  return _pairwise(_diou, boxes1, boxes2, eps)


def complete_box_iou(boxes1: jax.Array, boxes2: jax.Array, eps: float = 1e-7) -> jax.Array:
  """Pairwise complete IoU (Zheng et al., 2020): DIoU - alpha * aspect-ratio term v; `[N, M]`."""
  return _pairwise(_ciou, boxes1, boxes2, eps)


def elementwise_box_iou(boxes1: jax.Array, boxes2: jax.Array, eps: float = 1e-7) -> jax.Array:
  """IoU of matching pairs `boxes1[..., 4]`, `boxes2[..., 4]` -> `[...]` (differentiable)."""
  return _elementwise(lambda a, b, e: _iou(a, b, e)[0], boxes1, boxes2, eps)


def elementwise_generalized_box_iou(boxes1: jax.Array, boxes2: jax.Array,
                                    eps: float = 1e-7) -> jax.Array:
  """GIoU of matching pairs `[..., 4]` -> `[...]`; `1 - giou` is the GIoU loss."""
  return _elementwise(_giou, boxes1, boxes2, eps)


def elementwise_distance_box_iou(boxes1: jax.Array, boxes2: jax.Array, eps: float = 1e-7) -> jax.Array:
  """DIoU of matching pairs `[..., 4]` -> `[...]`; `1 - diou` is the DIoU loss."""
  return _elementwise(_diou, boxes1, boxes2, eps)


def elementwise_complete_box_iou(boxes1: jax.Array, boxes2: jax.Array, eps: float = 1e-7) -> jax.Array:
  """CIoU of matching pairs `[..., 4]` -> `[...]`; `1 - ciou` is the CIoU loss (alpha is not differentiated)."""
  return _elementwise(_ciou, boxes1, boxes2, eps)
