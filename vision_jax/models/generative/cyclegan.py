"""CycleGAN (Zhu et al., 2017) generators: the ResNet generator of Johnson et al. that the paper uses; its
discriminators are pix2pix's PatchGAN (`pix2pix.PatchDiscriminator`) on single images.

  c7s1-F, d2F, d4F (stride-2 3x3 convs), `num_blocks` residual blocks at 4F, u2F, uF (stride-2 transposed
  convs), c7s1-out with tanh; instance normalisation and ReLU after every conv but the last; reflection padding
  around the 7x7 and residual 3x3 convs.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError
from vision_jax.models.generative.pix2pix import GAN_INIT, instance_norm


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """Reflection padding of `pad` pixels on each side of H and W of [N, H, W, C]."""
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


class ResidualBlock(nn.Module):
  """x + (reflect-pad, 3x3 conv, IN, ReLU, reflect-pad, 3x3 conv, IN)(x)."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = nn.relu(instance_norm()(nn.Conv(self.features, (3, 3), padding="VALID", kernel_init=GAN_INIT,
                                        use_bias=False)(reflect_pad(x, 1))))
    y = instance_norm()(nn.Conv(self.features, (3, 3), padding="VALID", kernel_init=GAN_INIT,
                                use_bias=False)(reflect_pad(y, 1)))
    return x + y


class ResnetGenerator(nn.Module):
  """Image [N, H, W, C_in] -> image [N, H, W, out_channels] in [-1, 1] (H, W divisible by 2 ** num_downsamples).

  Attributes:
    out_channels: channels of the output image.
    features: F, the width of the first conv (2F, 4F after each downsampling).
    num_downsamples: stride-2 levels.
    num_blocks: residual blocks at the lowest resolution (the paper: 6 at 128 px, 9 at 256 px).
  """

  out_channels: int
  features: int = 32
  num_downsamples: int = 2
  num_blocks: int = 6

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    factor = 2 ** self.num_downsamples
    if x.shape[1] % factor or x.shape[2] % factor:
      raise ConfigError(f"the ResNet generator needs H and W divisible by {factor}, got {x.shape[1]}x{x.shape[2]}; "
                        "pad the images or lower num_downsamples")
    x = nn.Conv(self.features, (7, 7), padding="VALID", kernel_init=GAN_INIT, use_bias=False)(reflect_pad(x, 3))
    x = nn.relu(instance_norm()(x))
    for level in range(self.num_downsamples):
      x = nn.Conv(self.features * 2 ** (level + 1), (3, 3), strides=2, kernel_init=GAN_INIT, use_bias=False)(x)
      x = nn.relu(instance_norm()(x))
    for _ in range(self.num_blocks):
      x = ResidualBlock(x.shape[-1])(x)
    for level in reversed(range(self.num_downsamples)):
      x = nn.ConvTranspose(self.features * 2 ** level, (3, 3), strides=(2, 2), kernel_init=GAN_INIT,
                           use_bias=False)(x)
      x = nn.relu(instance_norm()(x))
    x = nn.Conv(self.out_channels, (7, 7), padding="VALID", kernel_init=GAN_INIT)(reflect_pad(x, 3))
    return jnp.tanh(x)
