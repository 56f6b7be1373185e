"""Second-stage detection postprocessing with torchvision's `RoIHeads.postprocess_detections` semantics.

Per image: softmax over the class logits, decode every class's deltas on its proposal with weights (10, 10, 5, 5)
(log-scales clamped at log(1000/16)), clip to the image, drop the background column, keep scores > 0.05, drop
boxes narrower or shorter than 1e-2 px, per-class NMS at IoU 0.5, and keep the 100 best. Outputs have a static
size (padded, with a count of valid detections), so the function works under `jit` and `vmap`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

from vision_jax.ops.box_coding import faster_rcnn_decode
from vision_jax.ops.boxes import clip_boxes, remove_small_boxes
from vision_jax.ops.nms import batched_nms

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class Detections(NamedTuple):
  """Padded detections of one image (or a batch with a leading axis).

  Attributes:
    boxes: [D, 4] xyxy boxes in the image's pixels (zeros after `count`).
    scores: [D] class probabilities (zeros after `count`).
    labels: [D] int32 classes, 1..C-1 (-1 after `count`).
    count: int32 number of valid detections.
    indices: [D] int32 index of each detection's proposal (-1 after `count`).
  """

  boxes: jax.Array
  scores: jax.Array
  labels: jax.Array
  count: jax.Array
  indices: jax.Array


def postprocess_detections(class_logits: jax.Array, box_regression: jax.Array, proposals: jax.Array,
                           image_size: tuple[int, int] | jax.Array, proposal_valid: Optional[jax.Array] = None,
                           score_thresh: float = 0.05, nms_thresh: float = 0.5, detections_per_img: int = 100,
                           min_size: float = 1e-2, weights: Sequence[float] = BOX_WEIGHTS) -> Detections:
  """Final detections of one image from the box head's outputs.

  Args:
    class_logits: [K, C] logits (class 0 is background).
    box_regression: [K, 4C] class-specific deltas (class-major, as `FastRCNNPredictor`).
    proposals: [K, 4] xyxy proposals the deltas refer to.
    image_size: (height, width) of the (resized, unpadded) image the boxes are clipped to.
    proposal_valid: [K] bool, False for padding proposals (never detected); all valid when None.
    score_thresh: keep class scores strictly above this.
    nms_thresh: per-class NMS IoU threshold.
    detections_per_img: static number of outputs D.
    min_size: minimum box width and height.
    weights: box-coder weights.

  Returns:
    `Detections` with D = detections_per_img entries ordered by decreasing score.
  """
  k, c = class_logits.shape
  scores = jax.nn.softmax(class_logits.astype(jnp.float32), axis=-1)
  deltas = box_regression.reshape(k, c, 4).astype(jnp.float32)
  boxes = faster_rcnn_decode(proposals.astype(jnp.float32)[:, None, :], deltas, weights)
  height, width = image_size[0], image_size[1]
  boxes = clip_boxes(boxes, (height, width))
  labels = jnp.broadcast_to(jnp.arange(c, dtype=jnp.int32), (k, c))
  boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
  keep = (scores > score_thresh) & remove_small_boxes(boxes, min_size)
  if proposal_valid is not None:
    keep &= jnp.repeat(jnp.asarray(proposal_valid, bool), c - 1)
  ranked = jnp.where(keep, scores, -1.0)
  idx, count = batched_nms(boxes, ranked, labels, nms_thresh, detections_per_img, score_threshold=0.0)
  ok = idx >= 0
  safe = jnp.maximum(idx, 0)
  return Detections(jnp.where(ok[:, None], boxes[safe], 0.0), jnp.where(ok, scores[safe], 0.0),
                    jnp.where(ok, labels[safe], -1), count, jnp.where(ok, safe // (c - 1), -1).astype(jnp.int32))
