"""Assigning ground-truth boxes to anchors: IoU thresholds, the lectures' greedy assignment, YOLO's grid.

Matches are int32 arrays over anchors: a ground-truth index >= 0, `NEGATIVE` (-1, background) or
`IGNORE` (-2, left out of the loss). Padded ground truth is marked invalid with a `gt_valid` mask.
"""

import jax
import jax.numpy as jnp

from vision_jax.errors import UserError
from vision_jax.ops import anchors as anchors_lib
from vision_jax.ops import checks

NEGATIVE = -1
IGNORE = -2


def _check_iou(iou: jax.Array) -> None:
  if jnp.ndim(iou) != 2:
    raise UserError(f'the IoU matrix must be 2-D; got shape {jnp.shape(iou)}: compute it with box_iou.')


def _threshold_matches(iou: jax.Array, high: float, low: float, gt_valid: jax.Array | None):
  """Masks invalid rows to -1 and thresholds: (valid [G], masked iou [G, A], best_gt [A], matches [A])."""
  if low > high:
    raise UserError(f'the negative (low) IoU threshold {low} exceeds the positive (high) one {high}: pass '
                    'low <= high.')
  valid = jnp.ones((iou.shape[0],), bool) if gt_valid is None else jnp.asarray(gt_valid, bool)
  masked = jnp.where(valid[:, None], iou, -1.0)
  best_iou = jnp.max(masked, axis=0)
  best_gt = jnp.argmax(masked, axis=0).astype(jnp.int32)
  matches = jnp.where(best_iou >= high, best_gt, jnp.where(best_iou < low, NEGATIVE, IGNORE)).astype(jnp.int32)
  return valid, masked, best_gt, matches


def iou_match(iou: jax.Array, positive_threshold: float = 0.7, negative_threshold: float = 0.3,
              gt_valid: jax.Array | None = None, keep_best_anchor: bool = True) -> jax.Array:
  """Threshold matching of anchors to ground truth (Faster R-CNN, SSD).

  An anchor whose best IoU is >= `positive_threshold` matches that ground truth, < `negative_threshold` is
  negative, in between is ignored. With `keep_best_anchor`, each valid ground truth with a non-zero IoU also
  claims its best anchor (the first of ties) so that no object is left without a positive.

  Args:
    iou: `[G, A]` IoU of ground truth (rows) and anchors (columns).
    positive_threshold: IoU at or above which an anchor is positive.
    negative_threshold: IoU below which an anchor is negative.
    gt_valid: `[G]` bool mask of real (unpadded) ground truth; all valid if None.
    keep_best_anchor: force each ground truth's best anchor to be positive for it.

  Returns:
    `[A]` int32 matches: ground-truth index, NEGATIVE (-1) or IGNORE (-2).
  """
  _check_iou(iou)
  g, a = iou.shape
  if g == 0:
    return jnp.full((a,), NEGATIVE, jnp.int32)
  valid, iou, _, matches = _threshold_matches(iou, positive_threshold, negative_threshold, gt_valid)
  if keep_best_anchor:
    best_anchor = jnp.argmax(iou, axis=1)
    claim = valid & (jnp.max(iou, axis=1) > 0)
    # Later ground truth wins a shared best anchor; invalid rows write out of bounds and are dropped.
    target = jnp.where(claim, best_anchor, a)
    matches = matches.at[target].set(jnp.arange(g, dtype=jnp.int32), mode='drop')
  return matches


def greedy_match(iou: jax.Array, threshold: float = 0.5,
                 gt_valid: jax.Array | None = None) -> jax.Array:
  """The lectures' anchor assignment: repeatedly take the largest entry of the IoU matrix.

  Each step assigns the anchor and ground truth of the largest remaining IoU and discards that anchor's
  column and that ground truth's row, until every ground truth has an anchor. Every other anchor then takes
  the ground truth of its highest IoU if that IoU is >= `threshold`.

  Args:
    iou: `[G, A]` IoU of ground truth and anchors.
    threshold: IoU for the second pass.
    gt_valid: `[G]` bool mask of real ground truth; all valid if None.

  Returns:
    `[A]` int32 ground-truth index per anchor, NEGATIVE (-1) for background.
  """
  _check_iou(iou)
  g, a = iou.shape
  if g == 0:
    return jnp.full((a,), NEGATIVE, jnp.int32)
  valid = jnp.ones((g,), bool) if gt_valid is None else jnp.asarray(gt_valid, bool)
  iou = jnp.where(valid[:, None], iou, -1.0)
  best = jnp.max(iou, axis=0)
  matches = jnp.where(best >= threshold, jnp.argmax(iou, axis=0), NEGATIVE).astype(jnp.int32)

  def step(_, state):
    work, matches = state
    flat = jnp.argmax(work)
    gi, ai = flat // a, flat % a
    ok = work[gi, ai] >= 0
    matches = jnp.where(ok, matches.at[ai].set(gi.astype(jnp.int32)), matches)
    work = jnp.where(ok, work.at[gi, :].set(-1.0).at[:, ai].set(-1.0), work)
    return work, matches

  _, matches = jax.lax.fori_loop(0, min(g, a), step, (iou, matches))
  return matches


def yolo_grid_assign(gt_boxes: jax.Array, anchors_wh: jax.Array, grid_size: tuple[int, int],
                     stride: float, gt_valid: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """YOLO assignment: the cell containing a box's centre and the anchor of highest (size) IoU.

  Args:
    gt_boxes: `[G, 4]` xyxy ground truth in pixels.
    anchors_wh: `[K, 2]` anchor sizes in pixels.
    grid_size: (gh, gw) cells.
    stride: pixels per cell.
    gt_valid: `[G]` bool mask of real ground truth; all valid if None.

  Returns:
    `cells [G, 3]` int32 (row, column, anchor) per ground truth, and `assignment [gh, gw, K]` int32 holding
    the ground-truth index responsible for each (cell, anchor) or -1; when two boxes claim the same slot the
    higher index wins.
  """
  checks.check_boxes(gt_boxes, 'gt_boxes', ndim=2)
  gh, gw = grid_size
  g = gt_boxes.shape[0]
  valid = jnp.ones((g,), bool) if gt_valid is None else jnp.asarray(gt_valid, bool)
  cx = (gt_boxes[:, 0] + gt_boxes[:, 2]) / 2
  cy = (gt_boxes[:, 1] + gt_boxes[:, 3]) / 2
  col = jnp.clip(jnp.floor(cx / stride), 0, gw - 1).astype(jnp.int32)
  row = jnp.clip(jnp.floor(cy / stride), 0, gh - 1).astype(jnp.int32)
  wh = gt_boxes[:, 2:] - gt_boxes[:, :2]
  anchor = jnp.argmax(anchors_lib.wh_iou(wh, jnp.asarray(anchors_wh, wh.dtype)), axis=1).astype(jnp.int32)
  cells = jnp.stack([row, col, anchor], axis=-1)
  assignment = jnp.full((gh, gw, anchors_wh.shape[0]), -1, jnp.int32)
  row_or_drop = jnp.where(valid, row, gh)
  assignment = assignment.at[row_or_drop, col, anchor].max(jnp.arange(g, dtype=jnp.int32), mode='drop')
  return cells, assignment


def rcnn_match(iou: jax.Array, high_threshold: float = 0.7, low_threshold: float = 0.3,
               allow_low_quality_matches: bool = True, gt_valid: jax.Array | None = None) -> jax.Array:
  """torchvision's `Matcher` (Faster R-CNN's RPN: 0.7 / 0.3 with low-quality matches; its heads: 0.5 / 0.5).

  Each anchor takes its best ground truth (the first of ties); best IoU < `low_threshold` gives NEGATIVE,
  in [low, high) gives IGNORE. With `allow_low_quality_matches`, every anchor tied at some ground truth's
  highest IoU (all ties, not only the first) gets back its best ground truth, whatever that IoU was; a ground
  truth overlapping nothing (an all-zero row) therefore revives every anchor it has IoU 0 with, as in
  torchvision. `iou_match` differs: it forces only the first best anchor and skips zero rows.
  With no valid ground truth every anchor is NEGATIVE (torchvision's background-image path).

  Args:
    iou: `[G, A]` IoU of ground truth (rows) and anchors or proposals (columns).
    high_threshold: IoU at or above which an anchor is matched.
    low_threshold: IoU below which an anchor is negative.
    allow_low_quality_matches: restore the matches of each ground truth's best anchors.
    gt_valid: `[G]` bool mask of real (unpadded) ground truth; all valid if None.

  Returns:
    `[A]` int32: the matched ground-truth index, or NEGATIVE (-1) / IGNORE (-2).
  """
  _check_iou(iou)
  if iou.shape[0] == 0:  # no ground truth rows at all: the background-image path
    return jnp.full((iou.shape[1],), NEGATIVE, jnp.int32)
  valid, masked, best_gt, matches = _threshold_matches(iou, high_threshold, low_threshold, gt_valid)
  if allow_low_quality_matches:
    highest_per_gt = jnp.max(masked, axis=1, keepdims=True)
    tied = jnp.any((masked == highest_per_gt) & valid[:, None], axis=0)
    matches = jnp.where(tied, best_gt, matches)
  return jnp.where(jnp.any(valid), matches, NEGATIVE).astype(jnp.int32)
