"""YOLO v1, v2 and v3 networks (Redmon et al. 2016; Redmon & Farhadi 2017, 2018) on Darknet-19, Darknet-53 or a
small backbone for the 96x96 digit scenes.

Every backbone returns feature maps at strides 8, 16 and 32 (`{8: ..., 16: ..., 32: ...}`); convs are darknet's
conv-BN-leaky(0.1) without bias. Outputs are raw (no activation):
  * `YoloV1`: [N, S, S, B * 5 + C] (per box x, y, sqrt w, sqrt h, confidence; then C class scores), from FC
    layers (the paper), a locally connected layer + FC (darknet yolo.cfg) or convs (`YoloV1.head`).
  * `YoloV2`: [N, H, W, A, 5 + C] at `head_stride`, with the passthrough (reorg) layer bringing the map of half
    that stride in as space-to-depth channels.
  * `YoloV3`: three arrays [N, H_s, W_s, 3, 5 + C] at strides 32, 16, 8 (anchor masks `V3_MASKS`), the coarser
    map upsampled and concatenated into the finer one.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# Anchor indices (anchors sorted by area) per v3 output, coarsest first: darknet yolov3.cfg's masks.
V3_MASKS = ((6, 7, 8), (3, 4, 5), (0, 1, 2))
# YOLO v1 heads: the paper's FC layers, darknet yolo.cfg's locally connected layer + FC, or convolutional.
V1_HEADS = ("fc", "local", "conv")
# darknet's COCO anchors for 416x416 inputs (yolov3.cfg) and VOC anchors in 13x13 grid units (yolo-voc.cfg).
V3_COCO_ANCHORS = "10,13;16,30;33,23;30,61;62,45;59,119;116,90;156,198;373,326"
V2_VOC_ANCHORS_GRID = ((1.3221, 1.73145), (3.19275, 4.00944), (5.05587, 8.09892), (9.47112, 4.84053),
                       (11.2364, 10.0071))


class DarknetConv(nn.Module):
  """Conv (no bias) -> batch norm -> leaky ReLU(0.1)."""

  features: int
  kernel: int = 3
  stride: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = nn.Conv(self.features, (self.kernel, self.kernel), self.stride, padding=self.kernel // 2, use_bias=False,
                dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(x)
    return nn.leaky_relu(x, 0.1)


def objectness_prior_bias(num_anchors: int, num_classes: int, prior: float = 0.01):
  """A head bias initializer: 0, except each anchor's objectness logit at log(prior / (1 - prior)), so that the
  many empty cells start near their target instead of dominating the first updates (RetinaNet's prior)."""
  logit = math.log(prior / (1 - prior))

  def init(key, shape, dtype=jnp.float32):
    del key
    bias = jnp.zeros((num_anchors, 5 + num_classes), dtype).at[:, 4].set(logit)
    return bias.reshape(shape)

  return init


def _max_pool(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (2, 2), (2, 2))


class Darknet19(nn.Module):
  """Darknet-19's 18 convs (YOLO v2's backbone, without the classifier conv)."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[int, jax.Array]:
    conv = lambda f, k=3: DarknetConv(f, k, dtype=self.dtype)
    out = {}
    x = _max_pool(conv(32)(x, train))
    x = _max_pool(conv(64)(x, train))
    for f in (128, 256):
      x = conv(f)(conv(f // 2, 1)(conv(f)(x, train), train), train)
      if f == 256:
        out[8] = x
      x = _max_pool(x)
    for f, k in ((512, 3), (256, 1), (512, 3), (256, 1), (512, 3)):
      x = conv(f, k)(x, train)
    out[16] = x
    x = _max_pool(x)
    for f, k in ((1024, 3), (512, 1), (1024, 3), (512, 1), (1024, 3)):
      x = conv(f, k)(x, train)
    out[32] = x
    return out


class Darknet53(nn.Module):
  """Darknet-53's 52 convs (YOLO v3's backbone): residual stages of 1, 2, 8, 8, 4 blocks."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[int, jax.Array]:
    x = DarknetConv(32, dtype=self.dtype)(x, train)
    out, stride = {}, 1
    for f, blocks in ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4)):
      x = DarknetConv(f, 3, 2, dtype=self.dtype)(x, train)
      stride *= 2
      for _ in range(blocks):
        x = x + DarknetConv(f, 3, dtype=self.dtype)(DarknetConv(f // 2, 1, dtype=self.dtype)(x, train), train)
      if stride >= 8:
        out[stride] = x
    return out


class SmallBackbone(nn.Module):
  """A small darknet-style backbone for 96x96 digits: widths w/2, w, 2w, 4w, 8w, 8w at strides 1..32 (maps from
  stride 4 on are returned)."""

  width: int = 16
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[int, jax.Array]:
    w = self.width
    x = DarknetConv(w // 2, dtype=self.dtype)(x, train)
    out, stride = {}, 1
    for f in (w, 2 * w, 4 * w, 8 * w, 8 * w):
      x = DarknetConv(f, 3, 2, dtype=self.dtype)(x, train)
      x = DarknetConv(f, 3, dtype=self.dtype)(x, train)
      stride *= 2
      if stride >= 4:
        out[stride] = x
    return out


def backbone(name: str, width: int, dtype: Any) -> nn.Module:
  """"small", "darknet19" or "darknet53"."""
  if name == "darknet19":
    return Darknet19(dtype=dtype)
  if name == "darknet53":
    return Darknet53(dtype=dtype)
  return SmallBackbone(width, dtype=dtype)


def reorg(x: jax.Array, stride: int = 2) -> jax.Array:
  """Space-to-depth: [N, H, W, C] -> [N, H / s, W / s, s * s * C] (YOLO v2's passthrough)."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // stride, stride, w // stride, stride, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h // stride, w // stride, stride * stride * c)


class YoloV1(nn.Module):
  """YOLO v1: backbone -> features at stride 16 (small) or 32, resized to S x S -> head -> S x S x (5B + C).

  Heads (`head`):
    * "fc": a 1x1 conv to `head_channels`, an FC layer of `hidden` units (0: none), dropout, an FC layer to the
      outputs (the paper's 4096-unit FC).
    * "local": darknet yolo.cfg's locally connected 3x3 layer of `head_channels` filters (unshared weights per
      cell), dropout, an FC layer to the outputs.
    * "conv": a 3x3 conv to `head_channels` and a 1x1 conv to each cell's outputs (fully convolutional).

  Attributes:
    num_classes: C.
    grid: S.
    boxes_per_cell: B.
    width: small backbone width.
    backbone: "small" | "darknet19" | "darknet53".
    head: "fc" | "local" | "conv".
    hidden: units of the hidden FC layer ("fc"; 0 for none).
    head_channels: channels of the first head layer.
    dropout: dropout rate before the last FC layer (the paper's 0.5).
  """

  num_classes: int
  grid: int = 7
  boxes_per_cell: int = 2
  width: int = 16
  backbone: str = "small"
  head: str = "fc"
  hidden: int = 512
  head_channels: int = 64
  dropout: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    maps = backbone(self.backbone, self.width, self.dtype)(images.astype(self.dtype), train)
    x = maps[16] if self.backbone == "small" else maps[32]
    n, h, w, _ = x.shape
    if h != self.grid or w != self.grid:
      x = jax.image.resize(x, (n, self.grid, self.grid, x.shape[-1]), "linear")
    outputs = self.boxes_per_cell * 5 + self.num_classes
    dropout = nn.Dropout(self.dropout, deterministic=not train or self.dropout == 0)
    if self.head == "conv":
      x = DarknetConv(self.head_channels, 3, dtype=self.dtype)(x, train)
      return nn.Conv(outputs, (1, 1), dtype=self.dtype)(x).astype(jnp.float32)
    if self.head == "local":
      x = nn.ConvLocal(self.head_channels, (3, 3), padding=1, dtype=self.dtype)(x)
      x = dropout(nn.leaky_relu(x, 0.1)).reshape(n, -1)
    else:
      x = DarknetConv(self.head_channels, 1, dtype=self.dtype)(x, train).reshape(n, -1)
      if self.hidden:
        x = dropout(nn.leaky_relu(nn.Dense(self.hidden, dtype=self.dtype)(x), 0.1))
    x = nn.Dense(self.grid * self.grid * outputs, dtype=self.dtype)(x)
    return x.reshape(n, self.grid, self.grid, outputs).astype(jnp.float32)


class YoloV2(nn.Module):
  """YOLO v2: backbone, two 3x3 convs at `head_stride`, the passthrough of the half-stride map (1x1 conv to
  `passthrough_channels`, reorg) concatenated, a 3x3 conv and a 1x1 conv to A x (5 + C).

  Attributes:
    num_classes: C.
    num_anchors: A.
    width: small backbone width.
    backbone: "small" (head at stride 16) | "darknet19" (head at stride 32, as yolo-voc.cfg).
  """

  num_classes: int
  num_anchors: int = 5
  width: int = 16
  backbone: str = "small"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    maps = backbone(self.backbone, self.width, self.dtype)(images.astype(self.dtype), train)
    stride = 16 if self.backbone == "small" else 32
    head = 8 * self.width if self.backbone == "small" else 1024
    x = maps[stride]
    x = DarknetConv(head, dtype=self.dtype)(DarknetConv(head, dtype=self.dtype)(x, train), train)
    passthrough = DarknetConv(max(head // 16, 8), 1, dtype=self.dtype)(maps[stride // 2], train)
    x = jnp.concatenate([reorg(passthrough), x], -1)
    x = DarknetConv(head, dtype=self.dtype)(x, train)
    x = nn.Conv(self.num_anchors * (5 + self.num_classes), (1, 1), dtype=self.dtype,
                bias_init=objectness_prior_bias(self.num_anchors, self.num_classes))(x)
    n, h, w, _ = x.shape
    return x.reshape(n, h, w, self.num_anchors, 5 + self.num_classes).astype(jnp.float32)


class YoloV3(nn.Module):
  """YOLO v3: three detection heads at `strides` (darknet: 32, 16, 8), each a conv set ending in a 1x1 conv to
  3 x (5 + C); the set's output goes through a 1x1 conv and 2x nearest upsampling into the next finer stride.

  Attributes:
    num_classes: C.
    width: small backbone width.
    backbone: "small" | "darknet53".
    strides: the three heads' strides, coarsest first, each half the previous (the small backbone also offers
      16, 8, 4: grids 6, 12, 24 on 96x96 inputs, as 32, 16, 8 give 13, 26, 52 on darknet's 416x416).
  """

  num_classes: int
  width: int = 16
  backbone: str = "small"
  strides: tuple[int, int, int] = (32, 16, 8)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array, jax.Array]:
    maps = backbone(self.backbone, self.width, self.dtype)(images.astype(self.dtype), train)
    outputs, route = [], None
    for stride in self.strides:
      x = maps[stride]
      c = x.shape[-1] // 2
      if route is not None:
        up = DarknetConv(c // 2, 1, dtype=self.dtype)(route, train)
        up = jnp.repeat(jnp.repeat(up, 2, axis=1), 2, axis=2)
        x = jnp.concatenate([up, x], -1)
      for f, k in ((c, 1), (2 * c, 3), (c, 1)):
        x = DarknetConv(f, k, dtype=self.dtype)(x, train)
      route = x
      x = DarknetConv(2 * c, 3, dtype=self.dtype)(x, train)
      x = nn.Conv(3 * (5 + self.num_classes), (1, 1), dtype=self.dtype,
                  bias_init=objectness_prior_bias(3, self.num_classes))(x)
      n, h, w, _ = x.shape
      outputs.append(x.reshape(n, h, w, 3, 5 + self.num_classes).astype(jnp.float32))
    return tuple(outputs)
