"""MobileNet v1 (Howard et al., 2017) and v2 (Sandler et al., 2018).

Presets:
  * `mobilenet_v1` (width multiplier `alpha`): the Keras layout (TF "same" padding, batch-norm eps 1e-3);
    4,231,976 trainable parameters for alpha 1 and 1000 classes.
  * `mobilenet_v2` (`width_mult`): torchvision layout, 3,504,872 parameters; `keras_mobilenet_v2` the Keras
    layout of the same network (TF "same" padding on strided convs, batch-norm eps 1e-3, no dropout).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import ConvBN, DepthwiseSeparable, Padding
from vision_jax.layers.mobile import InvertedResidual, make_divisible
from vision_jax.models.registry import register_factory

# (output channels, stride) of the 13 depthwise-separable blocks.
_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
              (512, 1), (512, 1), (1024, 2), (1024, 1))
# (expansion t, channels c, repeats n, first stride s) of MobileNetV2.
_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))


class MobileNetV1(nn.Module):
  """3x3/2 conv then 13 depthwise-separable blocks, global average pool, dropout, dense.

  Attributes:
    num_classes: output classes.
    alpha: width multiplier for every layer.
    dropout_rate: dropout before the classifier (Keras: 1e-3).
    padding: padding convention of the strided convs ("SAME" as Keras, "SYMMETRIC" as PyTorch ports).
    bn_eps: batch-norm epsilon.
    dtype: computation dtype.
    act: activation of every conv (ReLU6).
  """

  num_classes: int = 1000
  alpha: float = 1.0
  dropout_rate: float = 1e-3
  padding: Padding = "SAME"
  bn_eps: float = 1e-3
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu6

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    x = ConvBN(int(32 * self.alpha), 3, 2, self.padding, bn_eps=self.bn_eps, act=self.act, dtype=self.dtype,
               name="conv1")(images.astype(self.dtype), train)
    for i, (features, stride) in enumerate(_V1_BLOCKS):
      x = DepthwiseSeparable(int(features * self.alpha), stride, self.padding, self.bn_eps, act=self.act,
                             dtype=self.dtype, name=f"block{i + 1}")(x, train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)


class MobileNetV2(nn.Module):
  """3x3/2 conv 32, 17 inverted residual blocks, 1x1 conv 1280, global average pool, dropout, dense.

  Attributes:
    num_classes: output classes.
    width_mult: width multiplier (channels rounded to multiples of 8).
    dropout_rate: dropout before the classifier (torchvision 0.2).
    padding: padding convention of the 3x3 convs ("SYMMETRIC" torchvision, "SAME" Keras).
    bn_eps: batch-norm epsilon (torchvision 1e-5, Keras 1e-3).
    dtype: computation dtype.
    act: activation of every non-linear conv (ReLU6; the projections stay linear).
  """

  num_classes: int = 1000
  width_mult: float = 1.0
  dropout_rate: float = 0.2
  padding: Padding = "SYMMETRIC"
  bn_eps: float = 1e-5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu6

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    kw = dict(bn_eps=self.bn_eps, dtype=self.dtype, act=self.act)
    x = ConvBN(make_divisible(32 * self.width_mult), 3, 2, self.padding, name="stem",
               **kw)(images.astype(self.dtype), train)
    i = 0
    for t, c, n, s in _V2_SETTINGS:
      for j in range(n):
        x = InvertedResidual(make_divisible(c * self.width_mult), s if j == 0 else 1, t, padding=self.padding,
                             name=f"block{i}", **kw)(x, train)
        i += 1
    x = ConvBN(make_divisible(1280 * max(1.0, self.width_mult)), 1, 1, "VALID", name="head",
               **kw)(x, train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)


register_factory("mobilenet_v1", MobileNetV1)
register_factory("mobilenet_v2", MobileNetV2)
register_factory("keras_mobilenet_v2", functools.partial(MobileNetV2, padding="SAME", bn_eps=1e-3,
                                                         dropout_rate=0.0))
