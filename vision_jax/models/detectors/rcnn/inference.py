"""Faster/Mask R-CNN inference with torchvision's eval semantics: anchors, RPN proposals, box head, detections,
mask probabilities, and the mapping back to the original images.

`detect` is one jitted function of a padded, normalised batch (static shapes, padded outputs with counts);
`detect_images` wraps it with the host-side `rcnn_transform` and returns torchvision-style per-image results.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.models.detectors.rcnn.model import RCNN
from vision_jax.ops.anchors import rcnn_anchors, rcnn_anchors_per_level
from vision_jax.ops.masks import paste_masks_in_image
from vision_jax.ops.proposals import filter_proposals
from vision_jax.ops.rcnn_transform import postprocess_boxes, rcnn_transform
from vision_jax.ops.roi_heads import postprocess_detections


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
  """torchvision's eval-mode settings (defaults are those of `fasterrcnn_resnet50_fpn`).

  Attributes:
    anchor_sizes: anchor sizes per pyramid level (P2..P6).
    aspect_ratios: height/width ratios per level.
    rpn_pre_nms_top_n: proposals kept per level before NMS.
    rpn_post_nms_top_n: proposals kept per image after NMS.
    rpn_nms_thresh: RPN NMS IoU.
    rpn_score_thresh: minimum objectness probability.
    box_score_thresh: minimum class probability of a detection.
    box_nms_thresh: per-class NMS IoU of the detections.
    detections_per_img: static number of detections per image.
  """

  anchor_sizes: Sequence[Sequence[float]] = ((32,), (64,), (128,), (256,), (512,))
  aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),) * 5
  rpn_pre_nms_top_n: int = 1000
  rpn_post_nms_top_n: int = 1000
  rpn_nms_thresh: float = 0.7
  rpn_score_thresh: float = 0.0
  box_score_thresh: float = 0.05
  box_nms_thresh: float = 0.5
  detections_per_img: int = 100


@functools.partial(jax.jit, static_argnums=(0, 4))
def _detect(model: RCNN, variables, images, image_sizes, config: InferenceConfig) -> dict[str, jax.Array]:
  feats = model.apply(variables, images, method=RCNN.features)
  objectness, deltas = model.apply(variables, feats, method=RCNN.rpn)
  feature_sizes = [tuple(f.shape[1:3]) for f in feats]
  sizes, ratios = tuple(map(tuple, config.anchor_sizes)), tuple(map(tuple, config.aspect_ratios))
  anchors = rcnn_anchors(images.shape[1:3], feature_sizes, sizes, ratios)
  per_level = rcnn_anchors_per_level(feature_sizes, sizes, ratios)
  proposals, _, valid = jax.vmap(lambda d, o, s: filter_proposals(
      anchors, d, o, s, per_level, config.rpn_pre_nms_top_n, config.rpn_post_nms_top_n, config.rpn_nms_thresh,
      config.rpn_score_thresh))(deltas, objectness, image_sizes)
  class_logits, box_deltas = model.apply(variables, feats, proposals, method=RCNN.box_branch)
  dets = jax.vmap(lambda c, r, p, s, v: postprocess_detections(
      c, r, p, s, v, config.box_score_thresh, config.box_nms_thresh, config.detections_per_img))(
          class_logits, box_deltas, proposals, image_sizes, valid)
  out = dict(boxes=dets.boxes, scores=dets.scores, labels=dets.labels, count=dets.count, proposals=proposals,
             proposal_valid=valid)
  if model.mask:
    logits = model.apply(variables, feats, dets.boxes, method=RCNN.mask_branch)
    chosen = jnp.take_along_axis(logits, jnp.maximum(dets.labels, 0)[:, :, None, None, None], axis=-1)[..., 0]
    out["mask_probs"] = jax.nn.sigmoid(chosen)
  return out


def detect(model: RCNN, variables: Any, images: jax.Array, image_sizes: jax.Array,
           config: InferenceConfig = InferenceConfig()) -> dict[str, jax.Array]:
  """Detections of a normalised, padded batch (the output of `rcnn_transform`).

  Args:
    model: the `RCNN` (static).
    variables: its variables.
    images: [N, H, W, 3] normalised images, H and W multiples of 32.
    image_sizes: [N, 2] int (height, width) of each image before padding.
    config: eval settings.

  Returns:
    {"boxes" [N, D, 4] (in the resized images' pixels), "scores" [N, D], "labels" [N, D] (-1 padding),
     "count" [N], "proposals" [N, P, 4], "proposal_valid" [N, P], and with masks "mask_probs" [N, D, 28, 28]}.

  Float64 images under `jax.enable_x64(True)` stay float64: with a float64 `model` and variables the networks run
  in float64 (the box operations keep their float32 steps); anything else is cast to float32.
  """
  images = jnp.asarray(images)
  if images.dtype != jnp.float64:
    images = images.astype(jnp.float32)
  return _detect(model, variables, images, jnp.asarray(image_sizes, jnp.int32), config)


def detect_images(model: RCNN, variables: Any, images: Sequence[np.ndarray], min_size: int = 800,
                  max_size: int = 1333, config: InferenceConfig = InferenceConfig(),
                  **transform_kwargs: Any) -> list[dict[str, np.ndarray]]:
  """torchvision's `model.eval()(images)`: per image {"boxes", "scores", "labels"[, "masks" [D, H, W]]}.

  Args:
    model: the `RCNN`.
    variables: its variables.
    images: float images [H_i, W_i, 3] in [0, 1].
    min_size: short side after resizing.
    max_size: cap on the long side.
    config: eval settings.
    **transform_kwargs: further `rcnn_transform` arguments (image_mean, image_std, size_divisible).

  Returns:
    One dict per image with boxes in its original pixels and, with masks, pasted mask probabilities.
  """
  batch = rcnn_transform(list(images), min_size=min_size, max_size=max_size, **transform_kwargs)
  out = jax.device_get(detect(model, variables, batch["images"], batch["image_sizes"], config))
  results = []
  for i, original in enumerate(batch["original_sizes"]):
    n = int(out["count"][i])
    boxes = postprocess_boxes(jnp.asarray(out["boxes"][i, :n]), jnp.asarray(batch["image_sizes"][i]),
                              jnp.asarray(original))
    result = dict(boxes=np.asarray(boxes), scores=out["scores"][i, :n], labels=out["labels"][i, :n])
    if "mask_probs" in out:
      size = tuple(int(v) for v in original)
      result["masks"] = np.asarray(paste_masks_in_image(out["mask_probs"][i, :n], boxes, size))
    results.append(result)
  return results
