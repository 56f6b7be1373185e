"""The heads of torchvision's Faster/Mask R-CNN: RPN head, TwoMLPHead, FastRCNNPredictor, mask head and predictor.

Layouts follow torchvision so that its state dicts import by name (`vision_jax.interop.torch_detection`):
  * `RPNHead`: a shared 3x3 conv + ReLU, then 1x1 convs to A objectness logits and 4A deltas per location;
    outputs are flattened level by level in (y, x, anchor) order, torchvision's `concat_box_prediction_layers`.
  * `TwoMLPHead`: flatten the pooled [K, 7, 7, C] RoIs, fc6 + ReLU, fc7 + ReLU (1024 wide).
  * `FastRCNNPredictor`: class logits [K, num_classes] and class-specific deltas [K, 4 * num_classes].
  * `MaskHead`: four 3x3 conv + ReLU (256) on the 14x14 RoIs; `MaskPredictor`: 2x2 stride-2 transposed conv + ReLU
    and a 1x1 conv to per-class 28x28 mask logits.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class RPNHead(nn.Module):
  """Objectness logits and box deltas for `num_anchors` anchors at every location of every level.

  Attributes:
    num_anchors: anchors per location (A, 3 aspect ratios in torchvision).
    dtype: computation dtype.
  """

  num_anchors: int = 3
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features: Sequence[jax.Array]) -> tuple[jax.Array, jax.Array]:
    """Args: maps [N, H_l, W_l, C]. Returns: logits [N, T] and deltas [N, T, 4], T = sum_l H_l W_l A."""
    init = nn.initializers.normal(0.01)
    channels = features[0].shape[-1]
    conv = nn.Conv(channels, (3, 3), padding=1, kernel_init=init, dtype=self.dtype, name="conv")
    cls = nn.Conv(self.num_anchors, (1, 1), kernel_init=init, dtype=self.dtype, name="cls_logits")
    bbox = nn.Conv(4 * self.num_anchors, (1, 1), kernel_init=init, dtype=self.dtype, name="bbox_pred")
    logits, deltas = [], []
    for f in features:
      t = nn.relu(conv(f))
      logits.append(cls(t).reshape(f.shape[0], -1))
      deltas.append(bbox(t).reshape(f.shape[0], -1, 4))
    return jnp.concatenate(logits, axis=1), jnp.concatenate(deltas, axis=1)


class TwoMLPHead(nn.Module):
  """fc6 + ReLU, fc7 + ReLU on flattened RoI features (flattened in [h, w, C] order).

  Attributes:
    representation_size: width of both layers (1024).
    dtype: computation dtype.
  """

  representation_size: int = 1024
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, rois: jax.Array) -> jax.Array:
    """Args: rois [K, h, w, C]. Returns: [K, representation_size]."""
    x = rois.reshape(rois.shape[0], -1)
    x = nn.relu(nn.Dense(self.representation_size, dtype=self.dtype, name="fc6")(x))
    return nn.relu(nn.Dense(self.representation_size, dtype=self.dtype, name="fc7")(x))


class FastRCNNPredictor(nn.Module):
  """Class logits and class-specific box deltas.

  Attributes:
    num_classes: classes including background (index 0).
    dtype: computation dtype.
  """

  num_classes: int = 91
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Args: x [K, D]. Returns: logits [K, num_classes], deltas [K, 4 * num_classes] (class-major)."""
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="cls_score")(x)
    deltas = nn.Dense(4 * self.num_classes, dtype=self.dtype, name="bbox_pred")(x)
    return logits, deltas


class MaskHead(nn.Module):
  """torchvision's `MaskRCNNHeads`: 3x3 conv + ReLU layers (dilation 1, no norm).

  Attributes:
    layers: channels of each conv (256, 256, 256, 256).
    dtype: computation dtype.
  """

  layers: Sequence[int] = (256, 256, 256, 256)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, rois: jax.Array) -> jax.Array:
    """Args: rois [K, 14, 14, C]. Returns: [K, 14, 14, layers[-1]]."""
    init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # kaiming_normal_, fan_out
    x = rois
    for i, features in enumerate(self.layers):
      x = nn.relu(nn.Conv(features, (3, 3), padding=1, kernel_init=init, dtype=self.dtype, name=f"conv_{i}")(x))
    return x


class TransposedConv2x2(nn.Module):
  """PyTorch's `ConvTranspose2d(kernel_size=2, stride=2)`: every input pixel writes its own 2x2 output block.

  The kernel is [2, 2, C_in, C_out] (PyTorch's [C_in, C_out, 2, 2] transposed by (2, 3, 0, 1)).

  Attributes:
    features: output channels.
    dtype: computation dtype.
  """

  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [N, H, W, C] to [N, 2H, 2W, features]."""
    kernel = self.param("kernel", nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
                        (2, 2, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    n, h, w, _ = x.shape
    y = jnp.einsum("nhwc,abco->nhawbo", x.astype(self.dtype), kernel.astype(self.dtype))
    return y.reshape(n, 2 * h, 2 * w, self.features) + bias.astype(self.dtype)


class MaskPredictor(nn.Module):
  """torchvision's `MaskRCNNPredictor`: transposed conv 2x2/2 + ReLU, 1x1 conv to per-class mask logits.

  Attributes:
    dim_reduced: channels of the transposed conv (256).
    num_classes: classes including background.
    dtype: computation dtype.
  """

  dim_reduced: int = 256
  num_classes: int = 91
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Args: x [K, 14, 14, C]. Returns: mask logits [K, 28, 28, num_classes]."""
    x = nn.relu(TransposedConv2x2(self.dim_reduced, self.dtype, name="conv5_mask")(x))
    init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
    return nn.Conv(self.num_classes, (1, 1), kernel_init=init, dtype=self.dtype, name="mask_fcn_logits")(x)
