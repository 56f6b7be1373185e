"""Mobile blocks: squeeze-and-excitation (Hu et al., 2017) and the inverted residual / MBConv block
(Sandler et al., "MobileNetV2", 2018; Tan & Le, "EfficientNet", 2019)."""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.conv import Activation, ConvBN, Padding


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
  """Rounds a channel count to the nearest multiple of `divisor`, never more than 10% below `value`."""
  min_value = min_value or divisor
  new = max(min_value, int(value + divisor / 2) // divisor * divisor)
  return new + divisor if new < 0.9 * value else new


class SqueezeExcite(nn.Module):
  """Channel attention: global average pool, 1x1 reduce + act, 1x1 expand + sigmoid, rescale the input.

  Attributes:
    squeeze_channels: width of the bottleneck.
    act: activation of the bottleneck (ReLU in SENet, swish in EfficientNet).
    dtype: computation dtype.
  """

  squeeze_channels: int
  act: Activation = nn.relu
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [N, H, W, C] to [N, H, W, C]."""
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = self.act(nn.Conv(self.squeeze_channels, (1, 1), dtype=self.dtype, name="reduce")(s))
    s = nn.sigmoid(nn.Conv(x.shape[-1], (1, 1), dtype=self.dtype, name="expand")(s))
    return x * s


class InvertedResidual(nn.Module):
  """1x1 expand -> k x k depthwise -> [squeeze-excite] -> 1x1 linear projection, residual when shapes allow.

  Attributes:
    features: output channels.
    strides: depthwise stride.
    expand_ratio: hidden width / input width (no expansion conv when 1).
    kernel_size: depthwise window.
    se_ratio: squeeze width as a fraction of the INPUT channels, or None for no squeeze-excite.
    act: activation (ReLU6 in MobileNetV2, swish in EfficientNet).
    padding: depthwise padding convention.
    bn_eps: batch-norm epsilon.
    drop_path_rate: stochastic depth rate on the residual branch (training only, 'dropout' rng).
    dtype: computation dtype.
  """

  features: int
  strides: int = 1
  expand_ratio: float = 6
  kernel_size: int = 3
  se_ratio: Optional[float] = None
  act: Activation = nn.relu6
  padding: Padding = "SYMMETRIC"
  bn_eps: float = 1e-5
  drop_path_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H / strides, W / strides, features]."""
    c_in = x.shape[-1]
    hidden = int(round(c_in * self.expand_ratio))
    kw = dict(bn_eps=self.bn_eps, dtype=self.dtype)
    y = x
    if self.expand_ratio != 1:
      y = ConvBN(hidden, 1, 1, "VALID", act=self.act, name="expand", **kw)(y, train)
    y = ConvBN(hidden, self.kernel_size, self.strides, self.padding, groups=hidden, act=self.act, name="dw",
               **kw)(y, train)
    if self.se_ratio:
      y = SqueezeExcite(max(1, int(c_in * self.se_ratio)), act=self.act, dtype=self.dtype, name="se")(y)
    y = ConvBN(self.features, 1, 1, "VALID", act=None, name="project", **kw)(y, train)
    if self.strides != 1 or c_in != self.features:
      return y
    if train and self.drop_path_rate > 0:
      keep = 1.0 - self.drop_path_rate
      mask = jax.random.bernoulli(self.make_rng("dropout"), keep, (y.shape[0], 1, 1, 1))
      y = jnp.where(mask, y / keep, 0.0)
    return x + y
