"""Single-shot detector losses with static shapes: SSD (torchvision's `SSD.compute_loss`) and YOLO v1/v2/v3
(darknet's `detection_layer.c`, `region_layer.c`, `yolo_layer.c`).

Ground truth comes padded: boxes [N, M, 4] xyxy pixels, labels [N, M], and a [N, M] bool `valid` mask. Target
assignment runs in jnp (no host loops), so every loss is jit-able.

The YOLO losses are the functions whose negative gradients are darknet's deltas: `scale / 2 * (t - p)^2` for a
squared-error term with delta `scale * (t - p)`, and cross-entropy where darknet's delta is `t - p` on a logit
(softmax classes in v2; objectness, classes and the x, y offsets in v3, whose deltas skip the logistic
gradient). Sums run over cells and anchors, means over images (darknet sums over the batch and divides the
learning rate by the batch size).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from vision_jax.ops import anchors as anchors_lib
from vision_jax.ops import box_coding, boxes as boxes_lib

V3_BOX_LOSSES = ("darknet", "giou", "ciou")
# torchvision's SSD box coder weights (BoxCoder(weights=(10., 10., 5., 5.))).
SSD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def smooth_l1(x: jax.Array, beta: float = 1.0) -> jax.Array:
  """Elementwise smooth-L1 of differences `x` (PyTorch's `smooth_l1_loss` with `beta`)."""
  ax = jnp.abs(x)
  return jnp.where(ax < beta, 0.5 * ax * ax / beta, ax - 0.5 * beta)


def binary_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Elementwise BCE of sigmoid(logits) against targets in [0, 1] (stable form)."""
  return jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def ssd_match(gt_boxes: jax.Array, gt_valid: jax.Array, anchors: jax.Array, iou_threshold: float = 0.5) -> jax.Array:
  """torchvision's `SSDMatcher` for one image: an anchor takes the truth of highest IoU when that IoU is at least
  `iou_threshold`, and every truth also takes its best anchor (a later truth wins a shared best anchor).

  Args:
    gt_boxes: [M, 4] xyxy truth.
    gt_valid: [M] bool, real rows.
    anchors: [A, 4] xyxy default boxes in the same units.
    iou_threshold: IoU for the first rule.

  Returns:
    [A] int32 truth index per anchor, -1 for background.
  """
  iou = jnp.where(gt_valid[:, None], boxes_lib.box_iou(gt_boxes, anchors), -1.0)  # [M, A]
  best_gt = jnp.argmax(iou, axis=0).astype(jnp.int32)
  matches = jnp.where(jnp.max(iou, axis=0) >= iou_threshold, best_gt, -1)
  best_anchor = jnp.argmax(iou, axis=1)  # [M]
  forced = jnp.full(matches.shape, -1, jnp.int32).at[jnp.where(gt_valid, best_anchor, anchors.shape[0])].max(
      jnp.arange(gt_boxes.shape[0], dtype=jnp.int32), mode="drop")
  return jnp.where(forced >= 0, forced, matches)


def ssd_loss(cls_logits: jax.Array, box_regression: jax.Array, anchors: jax.Array, gt_boxes: jax.Array,
             gt_labels: jax.Array, gt_valid: jax.Array, neg_to_pos_ratio: int = 3,
             iou_threshold: float = 0.5) -> dict[str, jax.Array]:
  """SSD multibox loss with torchvision's `SSD.compute_loss` semantics.

  Matching by `ssd_match`; box targets by `faster_rcnn_encode` with weights (10, 10, 5, 5); smooth-L1 (beta 1)
  summed over positive anchors; softmax cross-entropy on positives plus the `neg_to_pos_ratio` x positives
  hardest negatives of each image; both divided by the number of positives in the batch (at least 1).

  Args:
    cls_logits: [N, A, K] class logits, channel 0 background.
    box_regression: [N, A, 4] predicted offsets.
    anchors: [A, 4] xyxy default boxes in pixels.
    gt_boxes: [N, M, 4] xyxy truth in pixels.
    gt_labels: [N, M] truth classes in 1..K-1 (0 is background).
    gt_valid: [N, M] bool, real rows.
    neg_to_pos_ratio: negatives kept per positive.
    iou_threshold: matching IoU.

  Returns:
    {"bbox_regression": scalar, "classification": scalar, "num_positives": scalar}.
  """
  matches = jax.vmap(lambda b, v: ssd_match(b, v, anchors, iou_threshold))(gt_boxes, gt_valid)  # [N, A]
  positive = matches >= 0
  index = jnp.maximum(matches, 0)
  matched_boxes = jnp.take_along_axis(gt_boxes, index[..., None], axis=1)  # [N, A, 4]
  safe_boxes = jnp.where(positive[..., None], matched_boxes, anchors[None])  # keeps log() finite off positives
  targets = box_coding.faster_rcnn_encode(anchors[None], safe_boxes, SSD_BOX_WEIGHTS)
  box_loss = jnp.sum(smooth_l1(box_regression - targets).sum(-1) * positive)
  cls_targets = jnp.where(positive, jnp.take_along_axis(gt_labels, index, axis=1), 0)
  log_probs = jax.nn.log_softmax(cls_logits.astype(jnp.float32), axis=-1)
  cls_loss = -jnp.take_along_axis(log_probs, cls_targets[..., None], axis=-1)[..., 0]  # [N, A]
  foreground = cls_targets > 0
  num_negative = neg_to_pos_ratio * jnp.sum(foreground, axis=1, keepdims=True)
  negative_loss = jnp.where(foreground, -jnp.inf, cls_loss)
  order = jnp.argsort(-negative_loss, axis=1, stable=True)
  rank = jnp.argsort(order, axis=1)
  background = rank < num_negative
  num_positives = jnp.maximum(jnp.sum(positive), 1).astype(jnp.float32)
  classification = jnp.sum(cls_loss * foreground) + jnp.sum(cls_loss * background)
  return {"bbox_regression": box_loss / num_positives, "classification": classification / num_positives,
          "num_positives": jnp.sum(positive).astype(jnp.float32)}


# --- YOLO ------------------------------------------------------------------------------------------------------
def _centres_cells(gt_boxes: jax.Array, grid: tuple[int, int], image_size: tuple[int, int]):
  """[N, M, 4] pixel boxes -> normalized (cx, cy, w, h) [N, M, 4] and their (row, col) cells [N, M] each."""
  height, width = image_size
  scale = jnp.array([width, height, width, height], jnp.float32)
  norm = boxes_lib.xyxy_to_cxcywh(gt_boxes.astype(jnp.float32)) / scale
  row = jnp.clip(jnp.floor(norm[..., 1] * grid[0]), 0, grid[0] - 1).astype(jnp.int32)
  col = jnp.clip(jnp.floor(norm[..., 0] * grid[1]), 0, grid[1] - 1).astype(jnp.int32)
  return norm, row, col


def _cxcywh_iou(a: jax.Array, b: jax.Array) -> jax.Array:
  """IoU of (cx, cy, w, h) boxes `[..., 4]`, broadcast against each other (0 where the union is empty)."""
  a, b = boxes_lib.cxcywh_to_xyxy(a), boxes_lib.cxcywh_to_xyxy(b)
  w = jnp.maximum(jnp.minimum(a[..., 2], b[..., 2]) - jnp.maximum(a[..., 0], b[..., 0]), 0)
  h = jnp.maximum(jnp.minimum(a[..., 3], b[..., 3]) - jnp.maximum(a[..., 1], b[..., 1]), 0)
  inter = w * h
  union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
  return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def _first_per_slot(slot: jax.Array, valid: jax.Array, num_slots: int) -> jax.Array:
  """[N, M] slot ids -> [N, num_slots] index of the first valid truth in each slot, -1 where none."""
  m = slot.shape[1]
  ids = jnp.where(valid, jnp.arange(m, dtype=jnp.int32)[None], m)
  first = jax.vmap(lambda s, i: jnp.full((num_slots,), m, jnp.int32).at[s].min(i))(slot, ids)
  return jnp.where(first < m, first, -1)


def yolo_v1_loss(outputs: jax.Array, gt_boxes: jax.Array, gt_labels: jax.Array, gt_valid: jax.Array,
                 image_size: tuple[int, int], num_boxes: int, coord_scale: float = 5.0, noobject_scale: float = 0.5,
                 object_scale: float = 1.0, class_scale: float = 1.0, rescore: bool = True) -> dict[str, jax.Array]:
  """YOLO v1 loss with darknet `detection_layer.c` semantics (`sqrt=1`, `softmax=0`).

  Per cell: B boxes (x, y offsets in the cell, sqrt w, sqrt h, all linear, w and h in image fractions) with a
  linear confidence, and C linear class scores. A cell holding a truth's centre (the first truth when several)
  is responsible for it: its box of highest IoU with the truth (lowest RMSE while all IoUs are 0) regresses
  the box with `coord_scale` and its confidence towards the IoU (`rescore`, else 1) with `object_scale`; its
  class scores regress the one-hot class with `class_scale`. All other confidences go to 0 with
  `noobject_scale`.

  Args:
    outputs: [N, S, S, B * 5 + C]: per box (x, y, sqrt_w, sqrt_h, confidence), then C class scores.
    gt_boxes: [N, M, 4] xyxy pixels; gt_labels: [N, M] in 0..C-1; gt_valid: [N, M].
    image_size: (H, W) pixels.
    num_boxes: B.

  Returns:
    {"loss", "coord_loss", "object_loss", "noobject_loss", "class_loss"} scalars (sums per image, mean over N).
  """
  n, s_h, s_w, _ = outputs.shape
  boxes = outputs[..., :num_boxes * 5].reshape(n, s_h, s_w, num_boxes, 5)
  class_scores = outputs[..., num_boxes * 5:]
  num_classes = class_scores.shape[-1]
  norm, row, col = _centres_cells(gt_boxes, (s_h, s_w), image_size)
  owner = _first_per_slot(row * s_w + col, gt_valid, s_h * s_w).reshape(n, s_h, s_w)  # [N, S, S]
  has_object = owner >= 0
  truth = jnp.take_along_axis(norm, jnp.maximum(owner, 0).reshape(n, -1, 1), axis=1).reshape(n, s_h, s_w, 4)
  labels = jnp.take_along_axis(gt_labels, jnp.maximum(owner, 0).reshape(n, -1), axis=1).reshape(n, s_h, s_w)
  cols = jnp.arange(s_w, dtype=jnp.float32)[None, None, :, None]
  rows = jnp.arange(s_h, dtype=jnp.float32)[None, :, None, None]
  predicted = jnp.stack([(boxes[..., 0] + cols) / s_w, (boxes[..., 1] + rows) / s_h,
                         boxes[..., 2] ** 2, boxes[..., 3] ** 2], -1)  # [N, S, S, B, 4] normalized cxcywh
  iou = jax.lax.stop_gradient(_cxcywh_iou(predicted, truth[..., None, :]))
  rmse = jax.lax.stop_gradient(jnp.sqrt(jnp.sum((predicted - truth[..., None, :]) ** 2, -1)))
  any_overlap = jnp.max(iou, -1, keepdims=True) > 0
  best = jnp.where(any_overlap[..., 0], jnp.argmax(iou, -1), jnp.argmin(rmse, -1))
  responsible = (jax.nn.one_hot(best, num_boxes) > 0) & has_object[..., None]  # [N, S, S, B]
  confidence = boxes[..., 4]
  conf_target = iou if rescore else jnp.ones_like(iou)
  object_loss = object_scale / 2 * jnp.sum(responsible * (conf_target - confidence) ** 2, (1, 2, 3))
  noobject_loss = noobject_scale / 2 * jnp.sum(~responsible * confidence ** 2, (1, 2, 3))
  cell_xy = jnp.stack([truth[..., 0] * s_w - cols[..., 0], truth[..., 1] * s_h - rows[..., 0]], -1)
  coord_target = jnp.concatenate([cell_xy, jnp.sqrt(jnp.maximum(truth[..., 2:], 0))], -1)[..., None, :]
  coord_loss = coord_scale / 2 * jnp.sum(responsible[..., None] * (coord_target - boxes[..., :4]) ** 2,
                                         (1, 2, 3, 4))
  onehot = jax.nn.one_hot(labels, num_classes)
  class_loss = class_scale / 2 * jnp.sum(has_object[..., None] * (onehot - class_scores) ** 2, (1, 2, 3))
  parts = {"coord_loss": coord_loss, "object_loss": object_loss, "noobject_loss": noobject_loss,
           "class_loss": class_loss}
  parts = {k: jnp.mean(v) for k, v in parts.items()}
  return {"loss": sum(parts.values()), **parts}


def yolo_anchor_boxes(outputs: jax.Array, anchors_wh: jax.Array, image_size: tuple[int, int]) -> jax.Array:
  """YOLO v2/v3 decoding: raw outputs [N, H, W, A, 5 + C] and anchors [A, 2] in pixels -> normalized
  (cx, cy, w, h) [N, H, W, A, 4]: ((sigmoid(tx) + col) / W, (sigmoid(ty) + row) / H, anchor exp(t) / image)."""
  _, g_h, g_w, _, _ = outputs.shape
  height, width = image_size
  cols = jnp.arange(g_w, dtype=jnp.float32)[None, None, :, None]
  rows = jnp.arange(g_h, dtype=jnp.float32)[None, :, None, None]
  return jnp.stack([(jax.nn.sigmoid(outputs[..., 0]) + cols) / g_w, (jax.nn.sigmoid(outputs[..., 1]) + rows) / g_h,
                    jnp.exp(outputs[..., 2]) * anchors_wh[:, 0] / width,
                    jnp.exp(outputs[..., 3]) * anchors_wh[:, 1] / height], -1)


def _best_truth_iou(predicted: jax.Array, norm: jax.Array, gt_valid: jax.Array) -> jax.Array:
  """[N, H, W, A] highest IoU of each predicted box with any valid truth of its image (no gradient)."""
  n = predicted.shape[0]
  flat = predicted.reshape(n, -1, 1, 4)
  iou = _cxcywh_iou(flat, norm[:, None])  # [N, P, M]
  best = jnp.max(jnp.where(gt_valid[:, None], iou, 0.0), -1)
  return jax.lax.stop_gradient(best.reshape(predicted.shape[:-1]))


def _assignment(norm, row, col, gt_valid, anchor, num_anchors: int, grid: tuple[int, int]):
  """Slot (row, col, anchor) of each truth -> [N, H, W, A] index of the responsible truth (-1 none; first wins)."""
  n = norm.shape[0]
  slot = (row * grid[1] + col) * num_anchors + anchor
  return _first_per_slot(slot, gt_valid, grid[0] * grid[1] * num_anchors).reshape(n, grid[0], grid[1], num_anchors)


def _gather_truth(owner: jax.Array, values: jax.Array) -> jax.Array:
  """owner [N, H, W, A] truth indices, values [N, M, ...] -> [N, H, W, A, ...] (row 0 where owner < 0)."""
  n = owner.shape[0]
  index = jnp.maximum(owner, 0).reshape(n, -1)
  picked = jnp.take_along_axis(values, index.reshape(index.shape + (1,) * (values.ndim - 2)), axis=1)
  return picked.reshape(owner.shape + values.shape[2:])


def _box_targets(norm_truth, grid: tuple[int, int], anchors_wh, image_size):
  """Responsible truths [N, H, W, A, 4] normalized cxcywh -> (tx, ty) in the cell and (tw, th) log-scales."""
  _, g_h, g_w, _, _ = norm_truth.shape
  height, width = image_size
  cols = jnp.arange(g_w, dtype=jnp.float32)[None, None, :, None]
  rows = jnp.arange(g_h, dtype=jnp.float32)[None, :, None, None]
  tx, ty = norm_truth[..., 0] * g_w - cols, norm_truth[..., 1] * g_h - rows
  tw = jnp.log(jnp.maximum(norm_truth[..., 2] * width, 1e-6) / anchors_wh[:, 0])
  th = jnp.log(jnp.maximum(norm_truth[..., 3] * height, 1e-6) / anchors_wh[:, 1])
  return jnp.stack([tx, ty], -1), jnp.stack([tw, th], -1)


def yolo_v2_loss(outputs: jax.Array, anchors_wh: jax.Array, gt_boxes: jax.Array, gt_labels: jax.Array,
                 gt_valid: jax.Array, image_size: tuple[int, int], coord_scale: float = 1.0,
                 object_scale: float = 5.0, noobject_scale: float = 1.0, class_scale: float = 1.0,
                 thresh: float = 0.6, rescore: bool = True) -> dict[str, jax.Array]:
  """YOLO v2 loss with darknet `region_layer.c` semantics (yolo-voc.cfg defaults; no warm-up prior term).

  Boxes decode as ((sigmoid(tx) + col) / W, (sigmoid(ty) + row) / H, anchor_w exp(tw), anchor_h exp(th)).
  Every predicted confidence goes to 0 with `noobject_scale` unless its box has IoU > `thresh` with a truth
  (no-object suppression). A truth is assigned to its centre cell and the anchor of highest wh-IoU; that slot
  regresses sigmoid(tx), sigmoid(ty), tw, th with `coord_scale * (2 - w * h)`, its confidence goes to the IoU
  (`rescore`) with `object_scale`, and its softmax classes take `class_scale` x cross-entropy.

  Args:
    outputs: [N, H, W, A, 5 + C] raw (tx, ty, tw, th, confidence logit, class logits).
    anchors_wh: [A, 2] anchor sizes in pixels.
    gt_boxes: [N, M, 4] xyxy pixels; gt_labels: [N, M]; gt_valid: [N, M].
    image_size: (H, W) pixels of the input.

  Returns:
    {"loss", "coord_loss", "object_loss", "noobject_loss", "class_loss"} scalars.
  """
  _, g_h, g_w, num_anchors, _ = outputs.shape
  anchors_wh = jnp.asarray(anchors_wh, jnp.float32)
  predicted = yolo_anchor_boxes(outputs, anchors_wh, image_size)
  norm, row, col = _centres_cells(gt_boxes, (g_h, g_w), image_size)
  wh_pixels = norm[..., 2:] * jnp.array([image_size[1], image_size[0]], jnp.float32)
  anchor = jax.vmap(lambda wh: jnp.argmax(anchors_lib.wh_iou(wh, anchors_wh), 1))(wh_pixels).astype(jnp.int32)
  owner = _assignment(norm, row, col, gt_valid, anchor, num_anchors, (g_h, g_w))
  responsible = owner >= 0
  truth = _gather_truth(owner, norm)
  confidence = jax.nn.sigmoid(outputs[..., 4])
  ignore = _best_truth_iou(predicted, norm, gt_valid) > thresh
  noobject_loss = noobject_scale / 2 * jnp.sum((~ignore & ~responsible) * confidence ** 2, (1, 2, 3))
  iou = jax.lax.stop_gradient(_cxcywh_iou(predicted, truth))
  conf_target = iou if rescore else 1.0
  object_loss = object_scale / 2 * jnp.sum(responsible * (conf_target - confidence) ** 2, (1, 2, 3))
  txy, twh = _box_targets(truth, (g_h, g_w), anchors_wh, image_size)
  scale = coord_scale * (2 - truth[..., 2] * truth[..., 3])
  sq = jnp.sum((txy - jax.nn.sigmoid(outputs[..., :2])) ** 2 + (twh - outputs[..., 2:4]) ** 2, -1)
  coord_loss = jnp.sum(responsible * scale / 2 * sq, (1, 2, 3))
  labels = _gather_truth(owner, gt_labels)
  log_probs = jax.nn.log_softmax(outputs[..., 5:], -1)
  ce = -jnp.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
  class_loss = class_scale * jnp.sum(responsible * ce, (1, 2, 3))
  parts = {"coord_loss": coord_loss, "object_loss": object_loss, "noobject_loss": noobject_loss,
           "class_loss": class_loss}
  parts = {k: jnp.mean(v) for k, v in parts.items()}
  return {"loss": sum(parts.values()), **parts}


def _iou_box_loss(predicted: jax.Array, truth: jax.Array, responsible: jax.Array, kind: str,
                  image_size: tuple[int, int]) -> jax.Array:
  """1 - GIoU or 1 - CIoU of predicted and truth boxes [..., 4] (normalised cxcywh), measured in pixels; 0 off the
  `responsible` slots (whose truth is replaced by a dummy box, so that no degenerate box reaches the gradient)."""
  height, width = image_size
  scale = jnp.array([width, height, width, height], jnp.float32)
  truth = jnp.where(responsible[..., None], truth, jnp.array([0.5, 0.5, 0.25, 0.25], jnp.float32))
  fn = boxes_lib.elementwise_generalized_box_iou if kind == "giou" else boxes_lib.elementwise_complete_box_iou
  loss = 1 - fn(boxes_lib.cxcywh_to_xyxy(predicted * scale), boxes_lib.cxcywh_to_xyxy(truth * scale))
  return jnp.where(responsible, loss, 0.0)


def yolo_v3_loss(outputs: Sequence[jax.Array], anchors_wh: jax.Array, masks: Sequence[Sequence[int]],
                 gt_boxes: jax.Array, gt_labels: jax.Array, gt_valid: jax.Array, image_size: tuple[int, int],
                 ignore_thresh: float = 0.5, box_loss: str = "darknet",
                 box_weight: float = 1.0) -> dict[str, jax.Array]:
  """YOLO v3 loss with darknet `yolo_layer.c` semantics, over several scales.

  Each truth picks one anchor among all of them by wh-IoU; the scale whose `mask` holds it assigns the truth
  to its centre cell. That slot takes BCE of sigmoid(tx), sigmoid(ty) against the in-cell offsets and
  squared error on (tw, th), both scaled by (2 - w * h); BCE objectness towards 1 and per-class BCE. Every
  other slot takes BCE objectness towards 0 unless its box has IoU > `ignore_thresh` with some truth.

  Args:
    outputs: per scale, [N, H_s, W_s, len(masks[s]), 5 + C] raw outputs (tx, ty, tw, th, objectness, classes).
    anchors_wh: [K, 2] every anchor's size in pixels.
    masks: per scale, the indices into `anchors_wh` of its anchors.
    gt_boxes: [N, M, 4] xyxy pixels; gt_labels: [N, M]; gt_valid: [N, M].
    image_size: (H, W) pixels of the input.
    ignore_thresh: IoU above which an unassigned prediction's objectness is not pushed to 0.
    box_loss: "darknet" (the terms above), or "giou" / "ciou": (2 - w * h) x (1 - GIoU or CIoU) of the decoded
      box and the truth in place of the x, y, w, h terms (YOLO v4's `iou_loss`).
    box_weight: multiplies the box term of either kind.

  Returns:
    {"loss", "coord_loss", "object_loss", "noobject_loss", "class_loss"} scalars.
  """
  anchors_wh = jnp.asarray(anchors_wh, jnp.float32)
  wh_pixels = (gt_boxes[..., 2:] - gt_boxes[..., :2]).astype(jnp.float32)
  best_anchor = jax.vmap(lambda wh: jnp.argmax(anchors_lib.wh_iou(wh, anchors_wh), 1))(wh_pixels).astype(jnp.int32)
  totals = {"coord_loss": 0.0, "object_loss": 0.0, "noobject_loss": 0.0, "class_loss": 0.0}
  for out, mask in zip(outputs, masks):
    _, g_h, g_w, num_anchors, _ = out.shape
    mask = jnp.asarray(mask, jnp.int32)
    scale_anchors = anchors_wh[mask]
    predicted = yolo_anchor_boxes(out, scale_anchors, image_size)
    norm, row, col = _centres_cells(gt_boxes, (g_h, g_w), image_size)
    in_scale = jnp.any(best_anchor[..., None] == mask, -1)
    local = jnp.argmax(best_anchor[..., None] == mask, -1).astype(jnp.int32)
    owner = _assignment(norm, row, col, gt_valid & in_scale, local, num_anchors, (g_h, g_w))
    responsible = owner >= 0
    truth = _gather_truth(owner, norm)
    ignore = _best_truth_iou(predicted, norm, gt_valid) > ignore_thresh
    objectness = out[..., 4]
    totals["noobject_loss"] += jnp.sum((~ignore & ~responsible) * binary_cross_entropy(objectness, 0.0), (1, 2, 3))
    totals["object_loss"] += jnp.sum(responsible * binary_cross_entropy(objectness, 1.0), (1, 2, 3))
    box_scale = 2 - truth[..., 2] * truth[..., 3]
    if box_loss == "darknet":
      txy, twh = _box_targets(truth, (g_h, g_w), scale_anchors, image_size)
      xy = jnp.sum(binary_cross_entropy(out[..., :2], txy), -1)
      wh = jnp.sum((twh - out[..., 2:4]) ** 2, -1) / 2
      coord = responsible * (xy + wh)
    else:
      coord = _iou_box_loss(predicted, truth, responsible, box_loss, image_size)
    totals["coord_loss"] += box_weight * jnp.sum(box_scale * coord, (1, 2, 3))
    onehot = jax.nn.one_hot(_gather_truth(owner, gt_labels), out.shape[-1] - 5)
    totals["class_loss"] += jnp.sum(responsible[..., None] * binary_cross_entropy(out[..., 5:], onehot), (1, 2, 3, 4))
  parts = {k: jnp.mean(v) for k, v in totals.items()}
  return {"loss": sum(parts.values()), **parts}
