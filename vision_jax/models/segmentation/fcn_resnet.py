"""FCN on a dilated ResNet-50, torchvision's `fcn_resnet50` layout.

The backbone is ResNet-50 (v1.5 bottlenecks) whose last two stages trade their stride for dilation
(`replace_stride_with_dilation=[False, True, True]`: output stride 8; the first block of a dilated stage keeps
the previous dilation, the others use the new one). The head is torchvision's `FCNHead`: 3x3 conv to
in_channels / 4 without bias, batch norm, ReLU, dropout 0.1, 1x1 conv to the classes; the scores are resized
bilinearly (half-pixel centres, `align_corners=False`) to the input size. No auxiliary head. With 21 classes it
has 32,957,013 trainable parameters, torchvision's count (`tests/models/test_segmentation_models.py`).
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.conv import ConvBN, max_pool
from vision_jax.models.registry import register_factory


class DilatedBottleneck(nn.Module):
  """1x1 reduce, 3x3 (dilated) conv, 1x1 expand (x4), each with batch norm; projection shortcut when the shape
  changes (torchvision's `Bottleneck` with `dilation`).

  Attributes:
    features: width of the inner convs (the block outputs 4x as many channels).
    strides: stride of the 3x3 conv and the shortcut.
    dilation: dilation (and padding) of the 3x3 conv.
    dtype: computation dtype.
  """

  features: int
  strides: int = 1
  dilation: int = 1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H / strides, W / strides, 4 * features]."""
    out = 4 * self.features
    y = ConvBN(self.features, 1, 1, "VALID", dtype=self.dtype, name="conv1")(x, train)
    d = self.dilation
    y = nn.Conv(self.features, (3, 3), self.strides, padding=d, kernel_dilation=d, use_bias=False, dtype=self.dtype,
                name="conv2")(y)
    y = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype,
                             name="bn2")(y))
    y = ConvBN(out, 1, 1, "VALID", act=None, dtype=self.dtype, name="conv3")(y, train)
    shortcut = x
    if self.strides != 1 or x.shape[-1] != out:
      shortcut = ConvBN(out, 1, self.strides, "VALID", act=None, dtype=self.dtype, name="downsample")(x, train)
    return nn.relu(shortcut + y)


class FCNResNet(nn.Module):
  """FCN with a dilated ResNet backbone: images [N, H, W, C] -> logits [N, H, W, K].

  Attributes:
    num_classes: K.
    stage_sizes: bottleneck blocks per stage (ResNet-50: 3, 4, 6, 3).
    width: channels of the first stage's inner convs (doubles every stage).
    dilate: per stage after the first, whether its stride becomes dilation.
    head_dropout: dropout of the FCN head.
    dtype: computation dtype.
  """

  num_classes: int = 21
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  width: int = 64
  dilate: Sequence[bool] = (False, True, True)
  head_dropout: float = 0.1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Args: images [N, H, W, C]; train: batch statistics and dropout. Returns: logits [N, H, W, num_classes]."""
    n, height, width = images.shape[:3]
    x = ConvBN(self.width, 7, 2, 3, dtype=self.dtype, name="stem")(images.astype(self.dtype), train)
    x = max_pool(x, 3, 2, 1)
    dilation = 1
    for stage, blocks in enumerate(self.stage_sizes):
      strides, first_dilation = 1, dilation
      if stage > 0:
        if self.dilate[stage - 1]:
          dilation *= 2
        else:
          strides = 2
      for b in range(blocks):
        x = DilatedBottleneck(self.width * 2**stage, strides if b == 0 else 1, first_dilation if b == 0 else dilation,
                              dtype=self.dtype, name=f"layer{stage + 1}_{b}")(x, train)
    x = ConvBN(x.shape[-1] // 4, 3, 1, 1, dtype=self.dtype, name="head")(x, train)
    x = nn.Dropout(self.head_dropout, deterministic=not train)(x)
    x = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name="classifier")(x)
    x = jax.image.resize(x.astype(jnp.float32), (n, height, width, self.num_classes), "bilinear", antialias=False)
    return x


NAMES = ("fcn_resnet50",)
register_factory("fcn_resnet50", functools.partial(FCNResNet))
