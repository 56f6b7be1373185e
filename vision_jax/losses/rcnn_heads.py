"""Losses of Faster/Mask R-CNN's RoI heads (torchvision's `fastrcnn_loss` and `maskrcnn_loss`), static shapes.

Sampled proposals come as fixed-size arrays with a `sampled` mask (False for padding); the sums and means run
over the sampled entries of the whole batch, exactly as torchvision's concatenated lists.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from vision_jax.losses.detection import binary_cross_entropy, smooth_l1
from vision_jax.ops.box_coding import faster_rcnn_encode
from vision_jax.ops.boxes import box_iou
from vision_jax.ops.masks import project_masks_on_boxes
from vision_jax.ops.matching import IGNORE, NEGATIVE, rcnn_match
from vision_jax.ops.sampling import balanced_sample

BOX_BETA = 1.0 / 9.0
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class RoITargets(NamedTuple):
  """The sampled proposals of one image and their targets, `S = batch_size_per_image` rows in index order.

  Attributes:
    proposals: [S, 4] sampled boxes (proposals, then ground truth appended as proposals).
    labels: [S] int32 class of the matched ground truth, 0 for background.
    regression_targets: [S, 4] deltas (weights 10, 10, 5, 5) of the matched ground truth.
    matched_idxs: [S] int32 ground-truth index (0 for background, as torchvision's clamp).
    sampled: [S] bool, False for padding rows.
  """

  proposals: jax.Array
  labels: jax.Array
  regression_targets: jax.Array
  matched_idxs: jax.Array
  sampled: jax.Array


def roi_head_targets(proposals: jax.Array, proposal_valid: jax.Array, gt_boxes: jax.Array, gt_labels: jax.Array,
                     gt_valid: jax.Array, key: jax.Array | None = None, permutation_pos: jax.Array | None = None,
                     permutation_neg: jax.Array | None = None, batch_size_per_image: int = 512,
                     positive_fraction: float = 0.25, fg_iou_thresh: float = 0.5, bg_iou_thresh: float = 0.5,
                     weights: Sequence[float] = BOX_WEIGHTS) -> RoITargets:
  """torchvision's `RoIHeads.select_training_samples` for one image (use `jax.vmap` for a batch).

  The ground-truth boxes are appended to the proposals; each candidate is matched (`rcnn_match` at 0.5 / 0.5,
  no low-quality matches), labelled with its ground truth's class (0 below 0.5, -1 between the thresholds), and
  `balanced_sample` keeps at most 512, a quarter positive; the sampled rows come in index order, as
  torchvision's `torch.where(pos | neg)`.

  Args:
    proposals: [P, 4] xyxy proposals (padded).
    proposal_valid: [P] bool.
    gt_boxes: [G, 4] xyxy ground truth (padded).
    gt_labels: [G] int classes (1..C-1).
    gt_valid: [G] bool.
    key: PRNG key for the sampling, when no permutations are given.
    permutation_pos: first entries of torch.randperm(#positives) (see `balanced_sample`), for exact parity.
    permutation_neg: likewise for the negatives.
    batch_size_per_image: S.
    positive_fraction: the most positives may take.
    fg_iou_thresh: IoU at or above which a candidate is foreground.
    bg_iou_thresh: IoU below which a candidate is background.
    weights: box-coder weights of the targets.

  Returns:
    `RoITargets` with S rows.
  """
  candidates = jnp.concatenate([proposals.astype(jnp.float32), gt_boxes.astype(jnp.float32)])
  valid = jnp.concatenate([jnp.asarray(proposal_valid, bool), jnp.asarray(gt_valid, bool)])
  matches = rcnn_match(box_iou(gt_boxes.astype(jnp.float32), candidates), fg_iou_thresh, bg_iou_thresh, False,
                       jnp.asarray(gt_valid, bool))
  matched = jnp.maximum(matches, 0)
  labels = jnp.where(matches == NEGATIVE, 0, jnp.where(matches == IGNORE, -1, jnp.asarray(gt_labels)[matched]))
  labels = jnp.where(valid, labels, -1).astype(jnp.int32)
  n = candidates.shape[0]
  pos, neg = balanced_sample(labels, batch_size_per_image, positive_fraction, permutation_pos, permutation_neg, key)
  (rows,) = jnp.nonzero(pos | neg, size=batch_size_per_image, fill_value=n)
  sampled = rows < n
  rows = jnp.minimum(rows, n - 1)
  unit = jnp.asarray([0.0, 0.0, 1.0, 1.0], jnp.float32)  # padding rows encode unit onto unit (finite, unused)
  boxes = jnp.where(sampled[:, None], candidates[rows], unit)
  # Background rows regress onto ground truth 0 (as torchvision's clamp; unused by the loss), or onto themselves
  # in an image without ground truth.
  any_gt = jnp.any(jnp.asarray(gt_valid, bool))
  gt = jnp.where(sampled[:, None] & any_gt, gt_boxes.astype(jnp.float32)[matched[rows]], boxes)
  return RoITargets(jnp.where(sampled[:, None], boxes, 0.0), jnp.where(sampled, labels[rows], 0),
                    faster_rcnn_encode(boxes, gt, weights), jnp.where(sampled, matched[rows], 0).astype(jnp.int32),
                    sampled)


def fastrcnn_loss(class_logits: jax.Array, box_regression: jax.Array, labels: jax.Array,
                  regression_targets: jax.Array, sampled: jax.Array | None = None,
                  beta: float = BOX_BETA) -> tuple[jax.Array, jax.Array]:
  """Classification cross-entropy and class-specific box smooth-L1 over sampled proposals.

  classification = mean CE over sampled proposals; box = sum over sampled positives (label > 0) of smooth-L1
  (beta 1/9) between the deltas of the proposal's ground-truth class and its targets, / number sampled.

  Args:
    class_logits: [..., K, C] logits (any leading batch axes).
    box_regression: [..., K, 4C] class-specific deltas.
    labels: [..., K] int classes (0 background).
    regression_targets: [..., K, 4] encoded targets (weights 10, 10, 5, 5).
    sampled: [..., K] bool, True for real sampled proposals; all when None.
    beta: smooth-L1 beta.

  Returns:
    (classification_loss, box_loss) scalars.
  """
  c = class_logits.shape[-1]
  logits = class_logits.reshape(-1, c).astype(jnp.float32)
  labels = labels.reshape(-1).astype(jnp.int32)
  weight = jnp.ones(labels.shape, jnp.float32) if sampled is None else sampled.reshape(-1).astype(jnp.float32)
  count = jnp.maximum(jnp.sum(weight), 1.0)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  ce = -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
  classification = jnp.sum(ce * weight) / count
  deltas = box_regression.reshape(labels.shape[0], c, 4).astype(jnp.float32)
  chosen = jnp.take_along_axis(deltas, labels[:, None, None], axis=1)[:, 0]
  positive = weight * (labels > 0)
  per_box = jnp.sum(smooth_l1(chosen - regression_targets.reshape(-1, 4).astype(jnp.float32), beta), axis=-1)
  return classification, jnp.sum(per_box * positive) / count


def maskrcnn_loss(mask_logits: jax.Array, proposals: jax.Array, gt_masks: jax.Array, gt_labels: jax.Array,
                  matched_idxs: jax.Array, positive: jax.Array) -> jax.Array:
  """Mean per-pixel BCE between each positive's ground-truth-class mask logits and its 28x28 mask target.

  Targets are `project_masks_on_boxes` of the matched ground-truth masks onto the proposals; only the channel of
  the matched ground truth's class is scored (torchvision's `maskrcnn_loss`). Without positives the loss is 0.

  Args:
    mask_logits: [N, K, M, M, C] logits.
    proposals: [N, K, 4] xyxy positive proposals (padded).
    gt_masks: [N, G, H, W] ground-truth masks (padded).
    gt_labels: [N, G] int classes of the ground truth.
    matched_idxs: [N, K] int ground-truth index of each proposal.
    positive: [N, K] bool, True for real positive proposals.

  Returns:
    Scalar loss.
  """
  n, k, m = mask_logits.shape[:3]
  g = gt_masks.shape[1]
  matched = jnp.asarray(matched_idxs, jnp.int32)
  flat_index = (jnp.arange(n, dtype=jnp.int32)[:, None] * g + jnp.clip(matched, 0, g - 1)).reshape(-1)
  targets = project_masks_on_boxes(gt_masks.reshape(n * g, *gt_masks.shape[2:]), proposals.reshape(-1, 4),
                                   flat_index, m)
  labels = jnp.take_along_axis(jnp.asarray(gt_labels, jnp.int32), jnp.clip(matched, 0, g - 1), axis=1).reshape(-1)
  logits = jnp.take_along_axis(mask_logits.reshape(n * k, m, m, -1), labels[:, None, None, None], axis=-1)[..., 0]
  weight = positive.reshape(-1).astype(jnp.float32)
  per_roi = jnp.mean(binary_cross_entropy(logits.astype(jnp.float32), targets), axis=(1, 2))
  return jnp.sum(per_roi * weight) / jnp.maximum(jnp.sum(weight), 1.0)
