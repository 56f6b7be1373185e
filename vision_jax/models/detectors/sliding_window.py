"""A sliding-window digit detector and its convolutional form (OverFeat, Sermanet et al., 2014).

`WindowClassifier` classifies one WINDOW x WINDOW window, seen with a ring of `context` pixels around it (input
crops of side WINDOW + 2 * context, the window in the middle, as R-CNN pads its proposals), into the digit
classes plus background (the last class), regresses the digit's box relative to the window and, optionally
(`iou_output`), predicts the window's IoU with the object's ideal window:

    conv 5x5 valid (c1) - ReLU - max pool 2 - conv 3x3 valid (c2) - ReLU - max pool 2 - dense (hidden) - ReLU
    - dense (classes + 1 + 4 [+ 1])

A crop of side WINDOW + 2 * context (context even) leaves a last pooled map of side 5 + context / 2, so the
first dense layer is a convolution of that size over it and the output layer a 1x1 convolution:
`to_convolutional` reshapes the trained dense kernels into those conv kernels and `ConvolutionalWindowNet` runs
the whole classifier over an image of any size at once. Output (i, j) of the convolutional form equals the
classifier on the crop whose top-left corner is (STRIDE * i, STRIDE * j) (STRIDE = 4, the product of the pools),
because every layer before the first dense one is a valid convolution or an aligned pool; with context, that crop
is window (i, j) of the image padded by `context` on each side. `crops_at_stride` cuts exactly those crops (the
crop loop the convolutional form replaces).

Box coding relative to a square window (cx, cy, side s): (gcx - cx) / s, (gcy - cy) / s, log(gw / s),
log(gh / s).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

WINDOW = 28
STRIDE = 4


def crop_size(context: int) -> int:
  """Side of the classifier's input crop: the window plus `context` pixels on each side."""
  if context < 0 or context % 2:
    raise ValueError(f"context={context}: give an even number of pixels >= 0 (the pools must stay aligned)")
  return WINDOW + 2 * context


def _pooled(context: int) -> int:
  return (crop_size(context) - 8) // 4  # side of the last pooled map: valid 5x5 conv, pool, valid 3x3 conv, pool


def _trunk(conv1: nn.Module, conv2: nn.Module, x: jax.Array) -> jax.Array:
  x = nn.max_pool(nn.relu(conv1(x)), (2, 2), (2, 2))
  return nn.max_pool(nn.relu(conv2(x)), (2, 2), (2, 2))


class WindowClassifier(nn.Module):
  """Crops [N, S, S, C] (S = `crop_size(context)`) -> {"logits": [N, num_classes + 1] (background last), "box":
  [N, 4] coded, and with `iou_output` "iou": [N] (a logit of the window's IoU with the object's ideal window)}.

  Attributes:
    num_classes: object classes (background is added as class `num_classes`).
    widths: channels of the two convolutions.
    hidden: width of the hidden dense layer.
    context: pixels of context around the WINDOW x WINDOW window on each side of the crop (even).
    iou_output: add the IoU output.
  """

  num_classes: int = 10
  widths: tuple[int, int] = (32, 64)
  hidden: int = 128
  context: int = 0
  iou_output: bool = False

  @nn.compact
  def __call__(self, crops: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    del train
    size = crop_size(self.context)
    if crops.shape[1:3] != (size, size):
      raise ValueError(f"crops of shape {crops.shape}: this classifier (context {self.context}) takes {size}x{size}")
    x = _trunk(nn.Conv(self.widths[0], (5, 5), padding="VALID", name="conv1"),
               nn.Conv(self.widths[1], (3, 3), padding="VALID", name="conv2"), crops)
    x = nn.relu(nn.Dense(self.hidden, name="fc1")(x.reshape((x.shape[0], -1))))
    return _split(nn.Dense(self.num_classes + 5 + int(self.iou_output), name="out")(x), self.num_classes)


def _split(out: jax.Array, num_classes: int) -> dict[str, jax.Array]:
  parts = {"logits": out[..., :num_classes + 1], "box": out[..., num_classes + 1:num_classes + 5]}
  if out.shape[-1] > num_classes + 5:
    parts["iou"] = out[..., num_classes + 5]
  return parts


class ConvolutionalWindowNet(nn.Module):
  """The classifier as a fully convolutional net: images [N, H, W, C] -> {"logits": [N, h, w, classes + 1],
  "box": [N, h, w, 4] (and "iou": [N, h, w])} with h = (H - crop_size(context)) // STRIDE + 1 (same for w).
  Takes `to_convolutional(params)`; with context, give the image padded by `context` on each side."""

  num_classes: int = 10
  widths: tuple[int, int] = (32, 64)
  hidden: int = 128
  context: int = 0
  iou_output: bool = False

  @nn.compact
  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    pooled = _pooled(self.context)
    x = _trunk(nn.Conv(self.widths[0], (5, 5), padding="VALID", name="conv1"),
               nn.Conv(self.widths[1], (3, 3), padding="VALID", name="conv2"), images)
    x = nn.relu(nn.Conv(self.hidden, (pooled, pooled), padding="VALID", name="fc1")(x))
    return _split(nn.Conv(self.num_classes + 5 + int(self.iou_output), (1, 1), name="out")(x), self.num_classes)


def to_convolutional(params: dict[str, Any]) -> dict[str, Any]:
  """`WindowClassifier` params -> `ConvolutionalWindowNet` params: the dense kernels [in, out] become conv
  kernels [p, p, c2, hidden] (the flattening order of a row-major [p, p, c2] pooled map, p = 5 + context / 2) and
  [1, 1, hidden, out]."""
  fc1, out = params["fc1"], params["out"]
  channels = params["conv2"]["kernel"].shape[-1]
  pooled = int(round((fc1["kernel"].shape[0] // channels) ** 0.5))
  return {"conv1": params["conv1"], "conv2": params["conv2"],
          "fc1": {"kernel": fc1["kernel"].reshape(pooled, pooled, channels, -1), "bias": fc1["bias"]},
          "out": {"kernel": out["kernel"].reshape(1, 1, *out["kernel"].shape), "bias": out["bias"]}}


def crops_at_stride(images: jax.Array, stride: int = STRIDE, window: int = WINDOW) -> jax.Array:
  """Every window x window crop of images [N, H, W, C] at `stride`: [N, h, w, window, window, C]."""
  n, height, width, _ = images.shape
  rows = (height - window) // stride + 1
  cols = (width - window) // stride + 1
  r = (jnp.arange(rows) * stride)[:, None] + jnp.arange(window)[None]  # [h, window]
  c = (jnp.arange(cols) * stride)[:, None] + jnp.arange(window)[None]  # [w, window]
  del n
  return images[:, r[:, None, :, None], c[None, :, None, :]]


def encode_boxes(boxes: jax.Array, windows: jax.Array) -> jax.Array:
  """xyxy boxes [..., 4] relative to square xyxy windows [..., 4] -> codes [..., 4] (module docstring)."""
  side = windows[..., 2] - windows[..., 0]
  wcx, wcy = (windows[..., 0] + windows[..., 2]) / 2, (windows[..., 1] + windows[..., 3]) / 2
  gw = jnp.maximum(boxes[..., 2] - boxes[..., 0], 1e-3)
  gh = jnp.maximum(boxes[..., 3] - boxes[..., 1], 1e-3)
  gcx, gcy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
  return jnp.stack([(gcx - wcx) / side, (gcy - wcy) / side, jnp.log(gw / side), jnp.log(gh / side)], -1)


def decode_boxes(codes: jax.Array, windows: jax.Array) -> jax.Array:
  """Inverse of `encode_boxes`: codes [..., 4] and windows [..., 4] -> xyxy boxes [..., 4]."""
  side = windows[..., 2] - windows[..., 0]
  cx = (windows[..., 0] + windows[..., 2]) / 2 + codes[..., 0] * side
  cy = (windows[..., 1] + windows[..., 3]) / 2 + codes[..., 1] * side
  half_w = jnp.exp(jnp.clip(codes[..., 2], -4.0, 2.0)) * side / 2
  half_h = jnp.exp(jnp.clip(codes[..., 3], -4.0, 2.0)) * side / 2
  return jnp.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1)
