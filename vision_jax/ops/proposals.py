"""Region proposals from RPN outputs: torchvision's `RegionProposalNetwork.filter_proposals` with static shapes.

Per image: the `pre_nms_top_n` anchors of highest objectness logit in each level, their decoded boxes clipped
to the image, small boxes and low scores removed, NMS independently per level, and the `post_nms_top_n` best
survivors, padded to that length with a valid mask.
"""

from typing import Sequence

import jax
import jax.numpy as jnp

from vision_jax.errors import UserError
from vision_jax.ops import box_coding
from vision_jax.ops import boxes as boxes_lib
from vision_jax.ops.nms import batched_nms

RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


def top_n_per_level(objectness: jax.Array, num_anchors_per_level: Sequence[int],
                    pre_nms_top_n: int) -> tuple[jax.Array, jax.Array]:
  """Indices of the `min(pre_nms_top_n, n_l)` highest logits of each level, by decreasing logit, and their level.

  Args:
    objectness: `[A]` logits, levels concatenated.
    num_anchors_per_level: n_l per level (sum = A).
    pre_nms_top_n: candidates per level.

  Returns:
    `indices [K]` int32 into A and `levels [K]` int32, K = sum_l min(pre_nms_top_n, n_l).
  """
  indices, levels = [], []
  offset = 0
  for level, n in enumerate(num_anchors_per_level):
    k = min(int(pre_nms_top_n), int(n))
    _, idx = jax.lax.top_k(objectness[offset:offset + n], k)
    indices.append(idx.astype(jnp.int32) + offset)
    levels.append(jnp.full((k,), level, jnp.int32))
    offset += n
  return jnp.concatenate(indices), jnp.concatenate(levels)


def filter_proposals(anchors: jax.Array, deltas: jax.Array, objectness: jax.Array, image_size: jax.Array,
                     num_anchors_per_level: Sequence[int], pre_nms_top_n: int = 1000,
                     post_nms_top_n: int = 1000, nms_threshold: float = 0.7, score_threshold: float | jax.Array = 0.0,
                     min_size: float = 1e-3) -> tuple[jax.Array, jax.Array, jax.Array]:
  """RPN proposals of one image with torchvision's semantics (`jax.vmap` over images with a shared `anchors`).

  torchvision's defaults: pre/post NMS top-n 2000/2000 in training and 1000/1000 in testing (FPN), NMS 0.7,
  score threshold 0 (on the sigmoid, kept when >=), min size 1e-3.

  Args:
    anchors: `[A, 4]` xyxy anchors (`rcnn_anchors`).
    deltas: `[A, 4]` RPN box regression, encoded with weights (1, 1, 1, 1).
    objectness: `[A]` RPN logits.
    image_size: `[2]` (height, width) of the image before padding; proposals are clipped to it.
    num_anchors_per_level: anchors per level (`rcnn_anchors_per_level`), static.
    pre_nms_top_n: candidates kept per level before NMS.
    post_nms_top_n: proposals returned (static output length).
    nms_threshold: IoU above which a lower-scoring proposal of the same level is suppressed.
    score_threshold: minimum sigmoid(objectness) (may be traced).
    min_size: minimum width and height.

  Returns:
    `boxes [post_nms_top_n, 4]`, `scores [post_nms_top_n]` (sigmoid, decreasing) and `valid [post_nms_top_n]`
    bool; invalid rows are zero.
  """
  a = anchors.shape[0]
  if sum(int(n) for n in num_anchors_per_level) != a:
    raise UserError(f'num_anchors_per_level sums to {sum(num_anchors_per_level)} but there are {a} anchors: '
                    'pass rcnn_anchors_per_level(...) of the same levels.')
  if objectness.shape != (a,) or deltas.shape != (a, 4):
    raise UserError(f'filter_proposals needs objectness [A] and deltas [A, 4] for A={a} anchors; got '
                    f'{objectness.shape} and {deltas.shape}: flatten the head outputs per image (use jax.vmap).')
  idx, levels = top_n_per_level(objectness, num_anchors_per_level, pre_nms_top_n)
  boxes = box_coding.faster_rcnn_decode(anchors[idx], deltas[idx], RPN_BOX_WEIGHTS)
  image_size = jnp.asarray(image_size)
  boxes = boxes_lib.clip_boxes(boxes, (image_size[0], image_size[1]))
  scores = jax.nn.sigmoid(objectness[idx].astype(jnp.float32))
  keep = boxes_lib.remove_small_boxes(boxes, min_size) & (scores >= score_threshold)
  # Removed candidates get a score below every sigmoid so that NMS drops them (its threshold is -0.5).
  nms_scores = jnp.where(keep, scores, -1.0)
  kept, _ = batched_nms(boxes, nms_scores, levels, nms_threshold, post_nms_top_n, score_threshold=-0.5)
  valid = kept >= 0
  safe = jnp.maximum(kept, 0)
  return (jnp.where(valid[:, None], boxes[safe], 0.0), jnp.where(valid, scores[safe], 0.0), valid)
