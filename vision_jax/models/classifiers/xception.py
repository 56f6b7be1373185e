"""Xception (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", 2016), in the Keras
layout: 22,855,952 trainable parameters for 1000 classes. Inputs of at least 71x71 (299x299 in the paper)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import ConvBN, SeparableConv, max_pool
from vision_jax.models.registry import register


class XceptionBlock(nn.Module):
  """[ReLU] sepconv-BN, ReLU sepconv-BN[, ReLU sepconv-BN], then max pool/2 with a 1x1/2 projection
  shortcut (entry/exit flow) or an identity shortcut (middle flow).

  Attributes:
    widths: output channels of the separable convs.
    reduce: end with a 3x3/2 max pool and project the shortcut.
    first_relu: apply the activation before the first separable conv.
    bn_eps: batch-norm epsilon.
    dtype: computation dtype.
    act: the activation before each separable conv (ReLU).
  """

  widths: tuple[int, ...]
  reduce: bool = True
  first_relu: bool = True
  bn_eps: float = 1e-3
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H', W', widths[-1]]."""
    y = x
    for i, width in enumerate(self.widths):
      if i > 0 or self.first_relu:
        y = self.act(y)
      y = SeparableConv(width, dtype=self.dtype, name=f"sepconv{i + 1}")(y)
      y = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=self.bn_eps, dtype=self.dtype,
                       name=f"sepconv{i + 1}_bn")(y)
    if not self.reduce:
      return x + y
    y = max_pool(y, 3, 2, "SAME")
    shortcut = ConvBN(self.widths[-1], 1, 2, "SAME", bn_eps=self.bn_eps, act=None, dtype=self.dtype,
                      name="residual")(x, train)
    return y + shortcut


@register("xception")
class Xception(nn.Module):
  """Entry flow (2 convs, 3 reducing blocks), middle flow (8 identity blocks of 728), exit flow.

  Attributes:
    num_classes: output classes.
    middle_blocks: identity blocks in the middle flow.
    bn_eps: batch-norm epsilon (Keras default 1e-3).
    dtype: computation dtype.
    act: every activation of the network (ReLU).
  """

  num_classes: int = 1000
  middle_blocks: int = 8
  bn_eps: float = 1e-3
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    kw = dict(bn_eps=self.bn_eps, dtype=self.dtype, act=self.act)
    x = ConvBN(32, 3, 2, "VALID", name="block1_conv1", **kw)(images.astype(self.dtype), train)
    x = ConvBN(64, 3, 1, "VALID", name="block1_conv2", **kw)(x, train)
    x = XceptionBlock((128, 128), first_relu=False, name="block2", **kw)(x, train)
    x = XceptionBlock((256, 256), name="block3", **kw)(x, train)
    x = XceptionBlock((728, 728), name="block4", **kw)(x, train)
    for i in range(self.middle_blocks):
      x = XceptionBlock((728, 728, 728), reduce=False, name=f"block{i + 5}", **kw)(x, train)
    x = XceptionBlock((728, 1024), name=f"block{self.middle_blocks + 5}", **kw)(x, train)
    x = self.act(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=self.bn_eps, dtype=self.dtype,
                              name="exit_sepconv1_bn")(SeparableConv(1536, dtype=self.dtype, name="exit_sepconv1")(x)))
    x = self.act(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=self.bn_eps, dtype=self.dtype,
                              name="exit_sepconv2_bn")(SeparableConv(2048, dtype=self.dtype, name="exit_sepconv2")(x)))
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(jnp.mean(x, axis=(1, 2)))
