"""SSD (Liu et al., "SSD: Single Shot MultiBox Detector", 2016): SSD300-VGG16 in torchvision's layout and a
small SSD for the embedded digit scenes, with torchvision's default boxes.

`SSD300VGG16(num_classes=91)` has 35,641,826 parameters, as torchvision's `ssd300_vgg16`: VGG16's convs up to
conv4_3 (L2-normalised, learned scale 20) and conv5_3, fc6/fc7 as a dilated 3x3 and a 1x1 conv, four extra
blocks (conv8_2 .. conv11_2), and one 3x3 class head and one 3x3 box head per feature map. Outputs are
location-major over the maps (38, 19, 10, 5, 3, 1), anchors within a location, as torchvision's heads order
them: `cls_logits [N, A, K]` (channel 0 background) and `box_regression [N, A, 4]`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.layers.conv import max_pool

# torchvision's SSD300 DefaultBoxGenerator settings.
SSD300_ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
SSD300_SCALES = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
SSD300_STEPS = (8, 16, 32, 64, 100, 300)
SSD300_FEATURE_SIZES = (38, 19, 10, 5, 3, 1)


def default_boxes(image_size: tuple[int, int], feature_sizes: Sequence[int], aspect_ratios: Sequence[Sequence[float]],
                  scales: Sequence[float], steps: Sequence[int] | None = None, clip: bool = True) -> np.ndarray:
  """Default boxes as torchvision's `DefaultBoxGenerator` and `SSD` place them on an image.

  Map k gets, at every location, boxes (s_k, s_k), (s'_k, s'_k) with s'_k = sqrt(s_k s_{k+1}), then for each
  ratio r: (s_k sqrt(r), s_k / sqrt(r)) and its transpose; widths and heights are clipped to [0, 1] when
  `clip`. Centres are ((j + 0.5) / (W / step_k), (i + 0.5) / (H / step_k)), or (j + 0.5) / f_k without steps.

  Args:
    image_size: (H, W) of the input in pixels.
    feature_sizes: side f_k of each square feature map.
    aspect_ratios: per map, the ratios besides 1.
    scales: s_1 .. s_{m+1} (one more than maps).
    steps: per map, the input pixels per feature-map cell (None: 1 / f_k of the image).
    clip: clip the normalized widths and heights to [0, 1].

  Returns:
    [sum_k f_k^2 * (2 + 2 len(r_k)), 4] float32 xyxy boxes in pixels, location-major per map.
  """
  height, width = image_size
  out = []
  for k, f in enumerate(feature_sizes):
    s, s_next = scales[k], scales[k + 1]
    wh = [[s, s], [math.sqrt(s * s_next)] * 2]
    for r in aspect_ratios[k]:
      sq = math.sqrt(r)
      wh += [[s * sq, s / sq], [s / sq, s * sq]]
    wh = np.array(wh, np.float32)
    if clip:
      wh = np.clip(wh, 0.0, 1.0)
    fx = width / steps[k] if steps else f
    fy = height / steps[k] if steps else f
    xs = (np.arange(f, dtype=np.float32) + np.float32(0.5)) / np.float32(fx)  # float32, as torchvision computes
    ys = (np.arange(f, dtype=np.float32) + np.float32(0.5)) / np.float32(fy)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    centres = np.stack([xx.reshape(-1), yy.reshape(-1)], -1)  # [f*f, 2]
    centres = np.repeat(centres, len(wh), axis=0)
    sizes = np.tile(wh, (f * f, 1))
    out.append(np.concatenate([centres, sizes], 1))
  boxes = np.concatenate(out).astype(np.float32)  # normalized (cx, cy, w, h); corners, then pixels, as torchvision
  half = np.float32(0.5) * boxes[:, 2:]
  scale = np.array([width, height], np.float32)
  return np.concatenate([(boxes[:, :2] - half) * scale, (boxes[:, :2] + half) * scale], 1)


def anchors_per_location(aspect_ratios: Sequence[Sequence[float]]) -> tuple[int, ...]:
  """Default boxes per location of each map: 2 + 2 x ratios."""
  return tuple(2 + 2 * len(r) for r in aspect_ratios)


class SSDHeads(nn.Module):
  """One 3x3 class conv and one 3x3 box conv per feature map, flattened location-major.

  Attributes:
    num_classes: K, including background.
    num_anchors: default boxes per location of each map.
  """

  num_classes: int
  num_anchors: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features: Sequence[jax.Array]) -> tuple[jax.Array, jax.Array]:
    init = nn.initializers.xavier_uniform()
    logits, boxes = [], []
    for i, (x, a) in enumerate(zip(features, self.num_anchors)):
      n = x.shape[0]
      c = nn.Conv(a * self.num_classes, (3, 3), padding=1, kernel_init=init, dtype=self.dtype, name=f"cls_{i}")(x)
      b = nn.Conv(a * 4, (3, 3), padding=1, kernel_init=init, dtype=self.dtype, name=f"box_{i}")(x)
      logits.append(c.reshape(n, -1, self.num_classes))
      boxes.append(b.reshape(n, -1, 4))
    return (jnp.concatenate(logits, 1).astype(jnp.float32), jnp.concatenate(boxes, 1).astype(jnp.float32))


class L2Norm(nn.Module):
  """Channel L2 normalisation with a learned per-channel scale (SSD's conv4_3 branch, init 20)."""

  scale_init: float = 20.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", nn.initializers.constant(self.scale_init), (x.shape[-1],))
    norm = jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32)), -1, keepdims=True))
    return (scale * x / jnp.maximum(norm, 1e-12)).astype(x.dtype)


class VGG16Features(nn.Module):
  """SSD300's VGG16 trunk with fc6/fc7 and the four extra blocks -> six feature maps (38, 19, 10, 5, 3, 1 for a
  300x300 input) with 512, 1024, 512, 256, 256, 256 channels."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    conv = lambda f, k=3, **kw: nn.Conv(f, (k, k), padding=kw.pop("padding", 1 if k == 3 else 0), dtype=self.dtype,
                                         **kw)
    stages = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512))
    for s, widths in enumerate(stages):
      for i, f in enumerate(widths):
        x = nn.relu(conv(f, name=f"conv{s + 1}_{i + 1}")(x))
      if s < 3:
        x = max_pool(x, 2, 2, ceil_mode=(s == 2))
    maps = [L2Norm(name="conv4_3_norm")(x)]
    x = max_pool(x, 2, 2)
    for i in range(3):
      x = nn.relu(conv(512, name=f"conv5_{i + 1}")(x))
    x = max_pool(x, 3, 1, padding=1)
    x = nn.relu(nn.Conv(1024, (3, 3), padding=6, kernel_dilation=6, dtype=self.dtype, name="fc6")(x))
    x = nn.relu(conv(1024, 1, name="fc7")(x))
    maps.append(x)
    xavier = nn.initializers.xavier_uniform()
    for i, (mid, out, stride, pad) in enumerate(((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0),
                                                 (128, 256, 1, 0))):
      x = nn.relu(conv(mid, 1, kernel_init=xavier, name=f"conv{8 + i}_1")(x))
      x = nn.relu(conv(out, 3, strides=stride, padding=pad, kernel_init=xavier, name=f"conv{8 + i}_2")(x))
      maps.append(x)
    return maps


class SSD300VGG16(nn.Module):
  """SSD300 with the VGG16 backbone: images [N, 300, 300, 3] -> (cls_logits [N, 8732, K], box_regression
  [N, 8732, 4]).

  Attributes:
    num_classes: K including background (91 for COCO in torchvision's numbering).
  """

  num_classes: int = 91
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    del train
    maps = VGG16Features(dtype=self.dtype, name="backbone")(images.astype(self.dtype))
    return SSDHeads(self.num_classes, anchors_per_location(SSD300_ASPECT_RATIOS), self.dtype, name="heads")(maps)

  @staticmethod
  def anchors(image_size: tuple[int, int] = (300, 300)) -> np.ndarray:
    """[8732, 4] xyxy pixel default boxes of torchvision's ssd300_vgg16."""
    return default_boxes(image_size, SSD300_FEATURE_SIZES, SSD300_ASPECT_RATIOS, SSD300_SCALES, SSD300_STEPS)


# Small SSD for 96x96 digit scenes: maps of stride 8, 16, 32 and one 1x1 map.
SMALL_ASPECT_RATIOS = ((2,), (2,), (2,), (2,))
SMALL_SCALES = (0.15, 0.28, 0.45, 0.65, 0.85)


class SmallSSD(nn.Module):
  """A small SSD: conv-BN-ReLU stages to maps of stride 8 (2w channels), 16, 32 (4w) and a global 1x1 map (4w),
  SSD heads on each.

  Attributes:
    num_classes: K including background.
    width: w, channels of the stride-4 stage.
  """

  num_classes: int
  width: int = 32
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    def block(x, f, stride, name):
      x = nn.Conv(f, (3, 3), strides=stride, padding=1, use_bias=False, dtype=self.dtype, name=name)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype, name=name + "_bn")(x)
      return nn.relu(x)

    w = self.width
    x = block(images.astype(self.dtype), w // 2, 2, "stem")
    x = block(block(x, w, 2, "s1"), w, 1, "s1b")
    maps = [block(block(x, 2 * w, 2, "s2"), 2 * w, 1, "s2b")]
    for i in range(2):
      maps.append(block(block(maps[-1], 2 * w, 1, f"extra{i}_a"), 4 * w, 2, f"extra{i}_b"))
    n = maps[-1].shape[0]
    pooled = jnp.mean(maps[-1], (1, 2), keepdims=True).reshape(n, 1, 1, -1)
    maps.append(block(pooled, 4 * w, 1, "global"))
    return SSDHeads(self.num_classes, anchors_per_location(SMALL_ASPECT_RATIOS), self.dtype, name="heads")(maps)

  @staticmethod
  def anchors(image_size: tuple[int, int]) -> np.ndarray:
    """[A, 4] xyxy pixel default boxes for the maps of an input of `image_size`."""
    height = image_size[0]
    sizes = (-(-height // 8), -(-height // 16), -(-height // 32), 1)
    return default_boxes(image_size, sizes, SMALL_ASPECT_RATIOS, SMALL_SCALES)
