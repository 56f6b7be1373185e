"""Faster R-CNN / Mask R-CNN network (Ren et al., 2015; He et al., 2017) with a ResNet-FPN backbone.

`RCNN` holds the learnable parts in torchvision's layout and exposes each stage as a method, so that training
(sampling, losses) and inference (proposal filtering, postprocessing) can be written as plain functions:
  * `features(images)` -> [P2, P3, P4, P5, P6] (strides 4 .. 64);
  * `rpn(features)` -> objectness logits [N, T] and anchor deltas [N, T, 4];
  * `box_branch(features, proposals)` -> class logits [N, K, C] and class-specific deltas [N, K, 4C], from a 7x7
    multi-scale RoIAlign (sampling ratio 2, P2-P5, canonical level 4 at size 224);
  * `mask_branch(features, boxes)` -> mask logits [N, D, 28, 28, C] from a 14x14 RoIAlign (or RoIPool with
    `mask_pool="roi_pool"`, for the RoIAlign-vs-RoIPool comparison).
Calling the module runs all of them (proposals default to one whole-image box) and is what `init` uses.

Presets: `fasterrcnn_resnet50_fpn` (41,755,286 parameters with frozen batch norm, torchvision's configuration
whenever weights are loaded; 41,808,406 with `norm="batch"`, the count of torchvision's `weights=None` model),
`maskrcnn_resnet50_fpn` (44,401,393 / 44,454,513), and `fasterrcnn_small_fpn` for 64x64 digit scenes.

`levels="c4"` is the original (non-FPN) Faster R-CNN: no pyramid; `features` returns [C4] alone (stride 16), the
RPN runs on it and both RoI branches pool from it at a single scale (RoIAlign, or RoIPool for the mask ablation).
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.detectors.rcnn.backbone import FPN, ResNetBody
from vision_jax.models.detectors.rcnn.heads import (FastRCNNPredictor, MaskHead, MaskPredictor, RPNHead,
                                                    TwoMLPHead)
from vision_jax.ops.roi_align import fpn_levels, multilevel_roi_align, roi_align
from vision_jax.ops.roi_pool import roi_pool

FPN_LEVELS = (2, 3, 4, 5)  # levels pooled by the RoI heads (P6 feeds the RPN only)
C4_STRIDE = 16  # the single feature map of `levels="c4"`
LEVEL_CHOICES = ("fpn", "c4")


def _flat_rois(boxes: jax.Array) -> tuple[jax.Array, jax.Array]:
  """[N, K, 4] -> boxes [N * K, 4] and their batch index [N * K]."""
  n, k = boxes.shape[:2]
  return boxes.reshape(n * k, 4), jnp.repeat(jnp.arange(n, dtype=jnp.int32), k)


class RCNN(nn.Module):
  """ResNet-FPN Faster R-CNN (and Mask R-CNN with `mask=True`) in torchvision's layout.

  Attributes:
    num_classes: classes including background (91 for torchvision's COCO models).
    stage_sizes: bottlenecks per ResNet stage.
    width: ResNet stem width (64 for ResNet-50).
    norm: "frozen" (torchvision's FrozenBatchNorm2d) or "batch".
    trainable_layers: ResNet pieces with gradients, counted from layer4 (torchvision's default 3).
    fpn_channels: channels of the pyramid (256).
    num_anchors: anchors per location (3 aspect ratios).
    representation_size: width of the box head's MLP (1024).
    mask: add the mask branch.
    mask_layers: channels of the mask head's convs.
    mask_dim_reduced: channels of the mask predictor's transposed conv.
    mask_pool: "roi_align" (Mask R-CNN) or "roi_pool" (the ablation).
    box_roi_size: RoI size of the box branch (7).
    mask_roi_size: RoI size of the mask branch (14).
    sampling_ratio: RoIAlign samples per bin per axis (2).
    levels: "fpn" (P2-P6 pyramid) or "c4" (one stride-16 map, no FPN: the original Faster R-CNN).
    dtype: computation dtype.
  """

  num_classes: int = 91
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  width: int = 64
  norm: str = "frozen"
  trainable_layers: int = 3
  fpn_channels: int = 256
  num_anchors: int = 3
  representation_size: int = 1024
  mask: bool = False
  mask_layers: Sequence[int] = (256, 256, 256, 256)
  mask_dim_reduced: int = 256
  mask_pool: str = "roi_align"
  box_roi_size: int = 7
  mask_roi_size: int = 14
  sampling_ratio: int = 2
  levels: str = "fpn"
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    if self.levels not in LEVEL_CHOICES:
      raise ValueError(f"unknown levels {self.levels!r}; use 'fpn' or 'c4'")
    self.body = ResNetBody(self.stage_sizes, self.width, self.norm, self.trainable_layers, self.dtype)
    if self.levels == "fpn":
      self.fpn = FPN(self.fpn_channels, self.dtype)
    self.rpn_head = RPNHead(self.num_anchors, self.dtype)
    self.box_head = TwoMLPHead(self.representation_size, self.dtype)
    self.box_predictor = FastRCNNPredictor(self.num_classes, self.dtype)
    if self.mask:
      if self.mask_pool not in ("roi_align", "roi_pool"):
        raise ValueError(f"unknown mask_pool {self.mask_pool!r}; use 'roi_align' or 'roi_pool'")
      self.mask_head = MaskHead(tuple(self.mask_layers), self.dtype)
      self.mask_predictor = MaskPredictor(self.mask_dim_reduced, self.num_classes, self.dtype)

  def features(self, images: jax.Array, train: bool = False) -> list[jax.Array]:
    """Args: normalised, padded images [N, H, W, 3] (H, W multiples of 32). Returns: [P2, ..., P6] ([C4])."""
    body = self.body(images, train)
    return [body[2]] if self.levels == "c4" else self.fpn(body)

  def rpn(self, features: Sequence[jax.Array]) -> tuple[jax.Array, jax.Array]:
    """Objectness logits [N, T] and anchor deltas [N, T, 4] over all levels (torchvision's anchor order)."""
    return self.rpn_head(features)

  def pool(self, features: Sequence[jax.Array], boxes: jax.Array, size: int) -> jax.Array:
    """Multi-scale RoIAlign of boxes [N, K, 4] (input pixels) from P2-P5 (or C4) -> [N * K, size, size, C]."""
    flat, batch_index = _flat_rois(boxes)
    if self.levels == "c4":
      return roi_align(features[0], flat, batch_index, size, 1.0 / C4_STRIDE, self.sampling_ratio)
    pooled, _ = multilevel_roi_align(list(features[:4]), flat, batch_index, size, FPN_LEVELS, self.sampling_ratio)
    return pooled

  def box_branch(self, features: Sequence[jax.Array], proposals: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Args: pyramid, proposals [N, K, 4]. Returns: class logits [N, K, C], deltas [N, K, 4C]."""
    n, k = proposals.shape[:2]
    logits, deltas = self.box_predictor(self.box_head(self.pool(features, proposals, self.box_roi_size)))
    return logits.reshape(n, k, -1), deltas.reshape(n, k, -1)

  def mask_branch(self, features: Sequence[jax.Array], boxes: jax.Array) -> jax.Array:
    """Args: pyramid, boxes [N, D, 4]. Returns: mask logits [N, D, 2 * mask_roi_size, 2 * mask_roi_size, C]."""
    n, d = boxes.shape[:2]
    if self.mask_pool == "roi_pool":
      rois = self._roi_pool_levels(features, boxes)
    else:
      rois = self.pool(features, boxes, self.mask_roi_size)
    logits = self.mask_predictor(self.mask_head(rois))
    return logits.reshape(n, d, *logits.shape[1:])

  def _roi_pool_levels(self, features: Sequence[jax.Array], boxes: jax.Array) -> jax.Array:
    """RoIPool from each box's FPN level (same level rule as the RoIAlign path)."""
    flat, batch_index = _flat_rois(boxes)
    if self.levels == "c4":
      return roi_pool(features[0], flat, batch_index, self.mask_roi_size, 1.0 / C4_STRIDE)
    level = fpn_levels(flat, FPN_LEVELS[0], FPN_LEVELS[-1])
    out = 0.0
    for i, l in enumerate(FPN_LEVELS):
      pooled = roi_pool(features[i], flat, batch_index, self.mask_roi_size, 2.0**-l)
      out = out + jnp.where((level == l)[:, None, None, None], pooled, 0.0)
    return out

  def __call__(self, images: jax.Array, proposals: Optional[jax.Array] = None, train: bool = False) -> dict:
    """Runs every stage (for `init` and tests).

    Args:
      images: [N, H, W, 3].
      proposals: [N, K, 4] boxes for the RoI heads; one whole-image box per image when None.
      train: batch statistics in the backbone (norm="batch").

    Returns:
      {"features", "objectness" [N, T], "rpn_deltas" [N, T, 4], "class_logits" [N, K, C],
       "box_deltas" [N, K, 4C], and "mask_logits" [N, K, 28, 28, C] with `mask`}.
    """
    feats = self.features(images, train)
    objectness, rpn_deltas = self.rpn(feats)
    if proposals is None:
      h, w = images.shape[1:3]
      proposals = jnp.broadcast_to(jnp.asarray([0.0, 0.0, w, h], jnp.float32), (images.shape[0], 1, 4))
    class_logits, box_deltas = self.box_branch(feats, proposals)
    out = {"features": feats, "objectness": objectness, "rpn_deltas": rpn_deltas, "class_logits": class_logits,
           "box_deltas": box_deltas}
    if self.mask:
      out["mask_logits"] = self.mask_branch(feats, proposals)
    return out
