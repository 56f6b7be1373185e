"""pix2pix (Isola et al., 2017): a U-Net generator and a PatchGAN discriminator on the (input, image) pair.

Both use instance normalisation: the paper trains with batch size 1, where batch normalisation is instance
normalisation, and it keeps these networks free of running statistics at any batch size. Convolutions are 4x4
with stride 2 (down) or transposed with stride 2 (up), weights N(0, 0.02) as in the paper's code.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError

GAN_INIT = nn.initializers.normal(0.02)


def instance_norm() -> nn.Module:
  """Instance normalisation with a learned scale and offset per channel."""
  return nn.InstanceNorm(epsilon=1e-5)


class UNetGenerator(nn.Module):
  """Image [N, H, W, C_in] -> image [N, H, W, out_channels] in [-1, 1] (tanh).

  Encoder level i: 4x4 stride-2 conv to features[i], instance norm (not on the first), LeakyReLU 0.2; a 3x3
  conv at the bottleneck; decoder mirrors it with 4x4 stride-2 transposed convs, instance norm, ReLU, the
  encoder's activation of the same size concatenated (the skip connections), dropout on the innermost
  `dropout_levels` decoder levels (training only: the paper's noise source).

  Attributes:
    out_channels: channels of the output image.
    features: encoder widths, one per stride-2 level (H and W must be divisible by 2 ** len(features)).
    dropout: dropout rate of the inner decoder levels.
    dropout_levels: how many decoder levels (from the bottleneck out) use dropout.
  """

  out_channels: int
  features: Sequence[int] = (64, 128)
  dropout: float = 0.5
  dropout_levels: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    levels = len(self.features)
    if x.shape[1] % 2 ** levels or x.shape[2] % 2 ** levels:
      raise ConfigError(f"the U-Net with {levels} levels needs H and W divisible by {2 ** levels}, got "
                        f"{x.shape[1]}x{x.shape[2]}; pad the images or use fewer generator levels")
    skips = []
    for i, width in enumerate(self.features):
      x = nn.Conv(width, (4, 4), strides=2, kernel_init=GAN_INIT, use_bias=i == 0)(x)
      if i:
        x = instance_norm()(x)
      x = nn.leaky_relu(x, 0.2)
      skips.append(x)
    x = nn.relu(instance_norm()(nn.Conv(self.features[-1], (3, 3), kernel_init=GAN_INIT, use_bias=False)(x)))
    for depth, (width, skip) in enumerate(zip(reversed(self.features), reversed(skips))):
      x = jnp.concatenate([x, skip], -1)
      out = self.out_channels if depth == levels - 1 else self.features[levels - 2 - depth]
      x = nn.ConvTranspose(out, (4, 4), strides=(2, 2), kernel_init=GAN_INIT, use_bias=depth == levels - 1)(x)
      if depth == levels - 1:
        return jnp.tanh(x)
      x = nn.relu(instance_norm()(x))
      if depth < self.dropout_levels and self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return x  # unreachable: the last level returns


class PatchDiscriminator(nn.Module):
  """PatchGAN: images [N, H, W, C] (for pix2pix the input and the image concatenated on channels) -> one logit
  per patch [N, H', W'].

  `features` stride-2 4x4 convs, then one stride-1 4x4 conv of twice the last width and a stride-1 4x4 conv to
  one channel; instance norm on all but the first, LeakyReLU 0.2. With features (64, 128, 256) this is the
  paper's 70x70 PatchGAN; `patch_receptive_field` gives the patch each logit sees.

  Attributes:
    features: widths of the stride-2 convolutions.
  """

  features: Sequence[int] = (64, 128, 256)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    for i, width in enumerate(self.features):
      x = nn.Conv(width, (4, 4), strides=2, kernel_init=GAN_INIT, use_bias=i == 0)(x)
      x = nn.leaky_relu(instance_norm()(x) if i else x, 0.2)
    x = nn.Conv(2 * self.features[-1], (4, 4), kernel_init=GAN_INIT, use_bias=False)(x)
    x = nn.leaky_relu(instance_norm()(x), 0.2)
    return nn.Conv(1, (4, 4), kernel_init=GAN_INIT)(x)[..., 0]


def patch_receptive_field(num_strided: int) -> int:
  """Side of the input patch one PatchGAN logit sees: `num_strided` 4x4 stride-2 convs then two 4x4 stride-1.

  Args:
    num_strided: len(features).

  Returns:
    The receptive field in pixels (70 for 3 strided layers).
  """
  field, jump = 1, 1
  for stride in [2] * num_strided + [1, 1]:
    field += 3 * jump
    jump *= stride
  return field
