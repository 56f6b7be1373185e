"""The region proposal network's loss (torchvision's `RegionProposalNetwork.assign_targets_to_anchors` and
`compute_loss`) with static shapes: ground truth comes padded, `[N, G, 4]` xyxy boxes with a `[N, G]` valid mask.
"""

import functools

import jax
import jax.numpy as jnp

from vision_jax.errors import UserError
from vision_jax.losses.detection import binary_cross_entropy, smooth_l1
from vision_jax.ops import box_coding
from vision_jax.ops import boxes as boxes_lib
from vision_jax.ops import matching
from vision_jax.ops import sampling
from vision_jax.ops.proposals import RPN_BOX_WEIGHTS


def rpn_targets(anchors: jax.Array, gt_boxes: jax.Array, gt_valid: jax.Array, fg_iou_threshold: float = 0.7,
                bg_iou_threshold: float = 0.3) -> tuple[jax.Array, jax.Array]:
  """Objectness labels and regression targets of one image's anchors (torchvision's RPN assignment).

  Matching is `rcnn_match(iou, 0.7, 0.3, allow_low_quality_matches=True)`; an image without valid ground truth
  is all background.

  Args:
    anchors: `[A, 4]` xyxy anchors.
    gt_boxes: `[G, 4]` xyxy ground truth, padded.
    gt_valid: `[G]` bool mask of real ground truth.
    fg_iou_threshold: IoU at or above which an anchor is foreground.
    bg_iou_threshold: IoU below which an anchor is background.

  Returns:
    `labels [A]` float32 (1 foreground, 0 background, -1 ignored) and `targets [A, 4]`, the deltas of the
    matched boxes with weights (1, 1, 1, 1) (0 where the anchor is not foreground).
  """
  iou = boxes_lib.box_iou(gt_boxes, anchors)
  matches = matching.rcnn_match(iou, fg_iou_threshold, bg_iou_threshold, True, gt_valid)
  labels = jnp.where(matches >= 0, 1.0, jnp.where(matches == matching.IGNORE, -1.0, 0.0))
  foreground = matches >= 0
  # Non-foreground anchors regress onto themselves, which keeps log(w / wa) finite (their targets are unused).
  matched = jnp.where(foreground[:, None], gt_boxes[jnp.maximum(matches, 0)], anchors)
  return labels.astype(jnp.float32), box_coding.faster_rcnn_encode(anchors, matched, RPN_BOX_WEIGHTS)


def rpn_loss(objectness: jax.Array, deltas: jax.Array, anchors: jax.Array, gt_boxes: jax.Array,
             gt_valid: jax.Array, key: jax.Array | None = None, permutations_pos: jax.Array | None = None,
             permutations_neg: jax.Array | None = None, batch_size_per_image: int = 256,
             positive_fraction: float = 0.5, fg_iou_threshold: float = 0.7,
             bg_iou_threshold: float = 0.3) -> tuple[jax.Array, jax.Array]:
  """torchvision's RPN loss over a batch: objectness BCE and box smooth-L1 on balanced samples of anchors.

  Per image, `rpn_targets` labels the anchors and `balanced_sample` picks 256 of them, at most half positive.
  Over the whole batch: objectness loss = mean BCE(logit, label) over all sampled anchors; box loss = sum of
  smooth-L1 (beta 1/9) over the positives' 4 deltas / number of sampled anchors.

  Args:
    objectness: `[N, A]` logits.
    deltas: `[N, A, 4]` predicted deltas.
    anchors: `[A, 4]` xyxy anchors shared by the batch.
    gt_boxes: `[N, G, 4]` padded ground truth.
    gt_valid: `[N, G]` bool.
    key: PRNG key for the sampling, used when no permutations are given.
    permutations_pos: `[N, K]` per image, the first entries of torch.randperm(#positives) (see
      `balanced_sample`), for exact reproduction.
    permutations_neg: `[N, K']` likewise for the negatives.
    batch_size_per_image: sampled anchors per image.
    positive_fraction: the most positives may take.
    fg_iou_threshold: IoU for foreground.
    bg_iou_threshold: IoU for background.

  Returns:
    `(objectness_loss, box_loss)` scalars.
  """
  if permutations_pos is None and key is None:
    raise UserError('rpn_loss needs a key or the two permutation arrays: pass key=jax.random.key(...).')
  labels, targets = jax.vmap(lambda b, v: rpn_targets(anchors, b, v, fg_iou_threshold, bg_iou_threshold))(
      gt_boxes, gt_valid)
  sample = functools.partial(sampling.balanced_sample, batch_size_per_image=batch_size_per_image,
                             positive_fraction=positive_fraction)
  if permutations_pos is None:
    keys = jax.random.split(key, labels.shape[0])
    pos, neg = jax.vmap(lambda l, k: sample(l, key=k))(labels, keys)
  else:
    pos, neg = jax.vmap(lambda l, p, q: sample(l, permutation_pos=p, permutation_neg=q))(
        labels, jnp.asarray(permutations_pos), jnp.asarray(permutations_neg))
  sampled = pos | neg
  num_sampled = jnp.maximum(jnp.sum(sampled), 1).astype(jnp.float32)
  box_loss = jnp.sum(jnp.where(pos[..., None], smooth_l1(deltas - targets, beta=1.0 / 9), 0.0)) / num_sampled
  bce = binary_cross_entropy(objectness, jnp.maximum(labels, 0.0))
  objectness_loss = jnp.sum(jnp.where(sampled, bce, 0.0)) / num_sampled
  return objectness_loss, box_loss

