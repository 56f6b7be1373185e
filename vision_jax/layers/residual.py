"""Residual blocks (He et al., "Deep Residual Learning for Image Recognition", 2015).

Both blocks follow the torchvision "v1.5" layout by default (the stride sits on the 3x3 conv of a bottleneck);
`stride_on_1x1=True` gives the original v1 layout used by Keras `ResNet50`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.conv import Activation, ConvBN


class _ResidualBlock(nn.Module):
  """Settings shared by the residual blocks.

  Attributes:
    features: width of the block's convs (a bottleneck outputs `expansion` times as many channels).
    strides: spatial stride of the block (and of the projection shortcut).
    conv_bias: biases on the convs (Keras ResNet has them).
    bn_eps: batch-norm epsilon.
    stride_on_1x1: bottleneck only: stride on the first 1x1 conv (v1, Keras) instead of the 3x3 (v1.5).
    dtype: computation dtype.
    act: activation after the inner convs and after the sum (ReLU).
  """

  features: int
  strides: int = 1
  conv_bias: bool = False
  bn_eps: float = 1e-5
  stride_on_1x1: bool = False
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  def shortcut(self, x: jax.Array, out: int, train: bool) -> jax.Array:
    """Identity, or a strided 1x1 conv-bn projection when the shape changes."""
    if self.strides == 1 and x.shape[-1] == out:
      return x
    return ConvBN(out, 1, self.strides, "VALID", use_bias=self.conv_bias, bn_eps=self.bn_eps, act=None,
                  dtype=self.dtype, name="downsample")(x, train)


class BasicBlock(_ResidualBlock):
  """Two 3x3 conv-bn layers with an identity (or 1x1 projection) shortcut; ResNet-18/34."""

  expansion = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H / strides, W / strides, features]."""
    kw = dict(use_bias=self.conv_bias, bn_eps=self.bn_eps, dtype=self.dtype)
    y = ConvBN(self.features, 3, self.strides, act=self.act, name="conv1", **kw)(x, train)
    y = ConvBN(self.features, 3, 1, act=None, name="conv2", **kw)(y, train)
    return self.act(self.shortcut(x, self.features, train) + y)


class Bottleneck(_ResidualBlock):
  """1x1 reduce, 3x3, 1x1 expand (x4) with an identity or projection shortcut; ResNet-50/101/152."""

  expansion = 4

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H / strides, W / strides, 4 * features]."""
    kw = dict(use_bias=self.conv_bias, bn_eps=self.bn_eps, dtype=self.dtype)
    s1, s3 = (self.strides, 1) if self.stride_on_1x1 else (1, self.strides)
    out = self.features * self.expansion
    y = ConvBN(self.features, 1, s1, "VALID", act=self.act, name="conv1", **kw)(x, train)
    y = ConvBN(self.features, 3, s3, act=self.act, name="conv2", **kw)(y, train)
    y = ConvBN(out, 1, 1, "VALID", act=None, name="conv3", **kw)(y, train)
    return self.act(self.shortcut(x, out, train) + y)
