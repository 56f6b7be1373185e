"""Small R-CNN and Fast R-CNN detectors for region proposals (Girshick et al. 2014; Girshick 2015).

Both take the images `[N, H, W, C]` and per-image proposals `rois [N, R, 4]` (xyxy input pixels) and return,
per proposal, class logits `[N, R, K]` (K = classes + 1, channel 0 background) and class-specific box deltas
`[N, R, 4K]` (class-major, Faster R-CNN coding with weights (10, 10, 5, 5) in the losses and postprocessing).

* `RCNN`: every proposal is warped on its own to a `crop_size` square (bilinear RoIAlign of the image, any
  aspect ratio, as the paper's anisotropic warp) after enlarging it so that `context` pixels of the warped crop
  show the image around it (the paper's 16 of 227), then a small CNN and two fully connected layers score it.
* `FastRCNN`: one conv feature map per image (stride `STRIDE`), RoIPool of each proposal to `pool_size` square
  cells (`vision_jax.ops.roi_pool`, torchvision's semantics), two fully connected layers, the same heads.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.conv import max_pool
from vision_jax.ops.roi_align import roi_align
from vision_jax.ops.roi_pool import roi_pool


def context_boxes(boxes: jax.Array, crop_size: int, context: int) -> jax.Array:
  """Boxes `[..., 4]` enlarged about their centres by crop / (crop - 2 context), so that a box warped to a
  `crop_size` square fills its centre and `context` pixels of surrounding image show on each side."""
  scale = crop_size / (crop_size - 2 * context)
  centre = (boxes[..., :2] + boxes[..., 2:]) / 2
  half = (boxes[..., 2:] - boxes[..., :2]) * (scale / 2)
  return jnp.concatenate([centre - half, centre + half], axis=-1)


def flat_rois(rois: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`[N, R, 4]` per-image boxes -> (`[N * R, 4]` boxes, `[N * R]` int32 image index of each)."""
  n, r = rois.shape[:2]
  return rois.reshape(n * r, 4).astype(jnp.float32), jnp.repeat(jnp.arange(n, dtype=jnp.int32), r)


class RegionHead(nn.Module):
  """Fully connected layers, then class logits `[K', num_classes]` and class-specific deltas `[K', 4 num_classes]`
  (the heads start small, as in Fast R-CNN: std 0.01 for scores, 0.001 for boxes)."""

  num_classes: int
  fc_width: int = 256
  num_fc: int = 2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    for i in range(self.num_fc):
      x = nn.relu(nn.Dense(self.fc_width, dtype=self.dtype, name=f"fc{i + 6}")(x))
    logits = nn.Dense(self.num_classes, kernel_init=nn.initializers.normal(0.01), dtype=self.dtype,
                      name="cls_score")(x)
    deltas = nn.Dense(4 * self.num_classes, kernel_init=nn.initializers.normal(0.001), dtype=self.dtype,
                      name="bbox_pred")(x)
    return logits, deltas


def _conv(x: jax.Array, features: int, name: str, dtype: Any) -> jax.Array:
  return nn.relu(nn.Conv(features, (3, 3), padding=1, dtype=dtype, name=name)(x))


class RCNN(nn.Module):
  """R-CNN: a CNN on each warped proposal (see the module docstring).

  Attributes:
    num_classes: K, object classes + 1 (background is class 0).
    crop_size: side of the warped proposal.
    context: pixels of context on each side of the warped crop.
    width: channels of the first conv (doubled after each of the three poolings but the last).
    fc_width: units of the two fully connected layers.
  """

  num_classes: int
  crop_size: int = 32
  context: int = 4
  width: int = 16
  fc_width: int = 256
  dtype: Any = jnp.float32

  def warp(self, images: jax.Array, rois: jax.Array) -> jax.Array:
    """`[N * R, crop, crop, C]` warped proposals (with context) of `rois [N, R, 4]`."""
    boxes, index = flat_rois(rois)
    boxes = context_boxes(boxes, self.crop_size, self.context)
    return roi_align(images.astype(jnp.float32), boxes, index, self.crop_size, 1.0, sampling_ratio=1, aligned=True)

  @nn.compact
  def __call__(self, images: jax.Array, rois: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    del train
    n, r = rois.shape[:2]
    x = self.warp(images, rois).astype(self.dtype)
    for i, features in enumerate((self.width, 2 * self.width, 4 * self.width)):
      x = max_pool(_conv(x, features, f"conv{i + 1}", self.dtype), 2, 2)
    logits, deltas = RegionHead(self.num_classes, self.fc_width, dtype=self.dtype, name="head")(x.reshape(n * r, -1))
    return logits.reshape(n, r, -1), deltas.reshape(n, r, -1)


class FastRCNN(nn.Module):
  """Fast R-CNN: RoIPool on one shared feature map (see the module docstring).

  Attributes:
    num_classes: K, object classes + 1 (background is class 0).
    width: channels of the first conv; the stride-6 map has 2 x width.
    pool_size: RoIPool output side.
    fc_width: units of the two fully connected layers.
  """

  num_classes: int
  width: int = 32
  pool_size: int = 7
  fc_width: int = 256
  dtype: Any = jnp.float32

  STRIDE = 6  # input pixels per feature-map cell: pooling by 2, then by 3

  def features(self, images: jax.Array) -> jax.Array:
    """`[N, H / 6, W / 6, 2 width]` feature map."""
    x = max_pool(_conv(images.astype(self.dtype), self.width, "conv1", self.dtype), 2, 2)
    x = max_pool(_conv(x, 2 * self.width, "conv2", self.dtype), 3, 3)
    return _conv(_conv(x, 2 * self.width, "conv3", self.dtype), 2 * self.width, "conv4", self.dtype)

  @nn.compact
  def __call__(self, images: jax.Array, rois: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    del train
    n, r = rois.shape[:2]
    fmap = self.features(images)
    boxes, index = flat_rois(rois)
    pooled = roi_pool(fmap, boxes, index, self.pool_size, 1.0 / self.STRIDE)
    logits, deltas = RegionHead(self.num_classes, self.fc_width, dtype=self.dtype,
                                name="head")(pooled.reshape(n * r, -1))
    return logits.reshape(n, r, -1), deltas.reshape(n, r, -1)


def build(kind: str, num_classes: int, **kwargs: Any) -> nn.Module:
  """`RCNN` (kind "rcnn") or `FastRCNN` ("fast_rcnn") for `num_classes` object classes (+1 background)."""
  models = {"rcnn": RCNN, "fast_rcnn": FastRCNN}
  if kind not in models:
    raise ValueError(f"unknown region CNN kind {kind!r}; kinds: {', '.join(models)}")
  return models[kind](num_classes + 1, **kwargs)
