"""SRGAN (Ledig et al., 2017): a residual generator that upsamples by pixel shuffle, and its discriminator.

Generator: 9x9 conv + PReLU, `num_blocks` residual blocks (3x3 conv, PReLU, 3x3 conv, added), a 3x3 conv added
to the first activation, log2(scale) upsampling blocks (3x3 conv to 4F channels, pixel shuffle x2, PReLU), a
9x9 conv and tanh. The paper's batch norm inside the blocks is left out (as EDSR does), so the generator has
no running statistics. Discriminator: pairs of 3x3 convs (stride 1 then 2) of growing width with LeakyReLU 0.2,
a dense layer, LeakyReLU and one logit (no batch norm, like the generator).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError
from vision_jax.layers.upsampling import pixel_shuffle

SCALES = (2, 4, 8)


class SRResidualBlock(nn.Module):
  """x + conv(PReLU(conv(x)))."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = nn.PReLU(negative_slope_init=0.25)(nn.Conv(self.features, (3, 3))(x))
    return x + nn.Conv(self.features, (3, 3))(y)


class SRGenerator(nn.Module):
  """Low-resolution image [N, h, w, C_in] -> image [N, h * scale, w * scale, out_channels] in [-1, 1].

  Attributes:
    out_channels: channels of the output.
    scale: upsampling factor, one of `SCALES` (one pixel-shuffle x2 block per factor of 2).
    features: F, the width of the residual trunk.
    num_blocks: residual blocks (the paper: 16).
  """

  out_channels: int
  scale: int = 2
  features: int = 64
  num_blocks: int = 4

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    if self.scale not in SCALES:
      raise ConfigError(f"SRGAN upsamples by {', '.join(map(str, SCALES))}, not {self.scale}; choose one of those")
    head = nn.PReLU(negative_slope_init=0.25)(nn.Conv(self.features, (9, 9))(x))
    y = head
    for _ in range(self.num_blocks):
      y = SRResidualBlock(self.features)(y)
    y = head + nn.Conv(self.features, (3, 3))(y)
    for _ in range(self.scale.bit_length() - 1):
      y = pixel_shuffle(nn.Conv(4 * self.features, (3, 3))(y), 2)
      y = nn.PReLU(negative_slope_init=0.25)(y)
    return jnp.tanh(nn.Conv(self.out_channels, (9, 9))(y))


class SRDiscriminator(nn.Module):
  """Image [N, H, W, C] -> logit [N].

  Attributes:
    features: width of each (stride 1, stride 2) conv pair.
    hidden: width of the dense layer.
  """

  features: Sequence[int] = (32, 64, 128)
  hidden: int = 256

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    for width in self.features:
      x = nn.leaky_relu(nn.Conv(width, (3, 3))(x), 0.2)
      x = nn.leaky_relu(nn.Conv(width, (3, 3), strides=2)(x), 0.2)
    x = nn.leaky_relu(nn.Dense(self.hidden)(x.reshape((x.shape[0], -1))), 0.2)
    return nn.Dense(1)(x)[:, 0]
