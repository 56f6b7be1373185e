"""Progressive growing of GANs (Karras et al., 2018) with static shapes.

Resolutions grow 4 -> 8 -> ... -> R (phase p works at 4 * 2 ** p). Every phase's layers exist from the start and
`phase` may be a traced integer: every resolution's path is computed at every call and the paths are blended with
weights that are exactly zero outside the phase (`blend_weights`), so one compiled step serves every phase. (A
`jax.lax.switch` over per-phase networks would compute less, but XLA:CPU runs convolutions inside conditional
branches 20-30x slower than at top level, measured here.) The generator always returns [N, R, R, C]: a phase-p
image is nearest-upsampled to R; the discriminator always takes [N, R, R, C] and average-pools it to each level's
resolution. During a phase's fade-in, `alpha` blends the new block with the previous phase's path:

  generator:      image = (1 - alpha) * up2(to_rgb[p-1](h[p-1])) + alpha * to_rgb[p](h[p])
  discriminator:  h = (1 - alpha) * from_rgb[p-1](pool2(x)) + alpha * block[p](from_rgb[p](x))

so alpha 0 is the previous phase's network and alpha 1 the new one. Also: pixel norm after every generator conv,
a minibatch standard-deviation channel before the discriminator's last block, equalised learning rate (weights
drawn N(0, 1) and scaled at run time by He's constant), LeakyReLU 0.2, nearest upsampling, average-pool
downsampling.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError


def pixel_norm(x: jax.Array, epsilon: float = 1e-8) -> jax.Array:
  """Each pixel's feature vector scaled to unit root-mean-square: x / sqrt(mean_c(x^2) + epsilon), [..., C]."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + epsilon)


def minibatch_stddev(x: jax.Array, group_size: int = 4, epsilon: float = 1e-8) -> jax.Array:
  """Appends the minibatch standard-deviation channel (the paper's code): examples are split into groups of
  `group_size` (example i in group i mod N/G), the standard deviation of each feature over a group is averaged
  over features and pixels, and that one number per group is appended as a constant channel.

  Args:
    x: [N, H, W, C]; N divisible by min(group_size, N).
    group_size: G.
    epsilon: added to the variance before the square root.

  Returns:
    [N, H, W, C + 1].
  """
  n, h, w, _ = x.shape
  group = min(group_size, n)
  if n % group:
    raise ConfigError(f"minibatch stddev groups of {group} need a batch divisible by {group}, got {n}; change the "
                      "batch size")
  y = x.reshape((group, n // group) + x.shape[1:]).astype(jnp.float32)
  stddev = jnp.sqrt(jnp.mean(jnp.square(y - jnp.mean(y, axis=0)), axis=0) + epsilon)  # [N/G, H, W, C]
  per_group = jnp.tile(jnp.mean(stddev, axis=(1, 2, 3)), group)  # example i -> its group i mod N/G
  return jnp.concatenate([x, jnp.broadcast_to(per_group[:, None, None, None], (n, h, w, 1)).astype(x.dtype)], -1)


def upsample_nearest(x: jax.Array, factor: int) -> jax.Array:
  """[N, H, W, C] -> [N, H * factor, W * factor, C], each pixel repeated."""
  return x if factor == 1 else jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def downsample_average(x: jax.Array, factor: int) -> jax.Array:
  """[N, H, W, C] -> [N, H / factor, W / factor, C], means of factor x factor blocks."""
  if factor == 1:
    return x
  n, h, w, c = x.shape
  return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


class EqualConv(nn.Module):
  """Convolution with equalised learning rate: kernel ~ N(0, 1), multiplied by gain / sqrt(fan_in) when applied."""

  features: int
  kernel_size: int = 3
  gain: float = math.sqrt(2)
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.normal(1.0), (k, k, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    scale = self.gain / math.sqrt(k * k * x.shape[-1])
    y = jax.lax.conv_general_dilated(x, kernel * scale, (1, 1), self.padding,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


class EqualDense(nn.Module):
  """Dense layer with equalised learning rate (see `EqualConv`)."""

  features: int
  gain: float = math.sqrt(2)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.normal(1.0), (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return x @ (kernel * (self.gain / math.sqrt(x.shape[-1]))) + bias


def blend_weights(phase: jax.Array | int, alpha: jax.Array | float, num_phases: int) -> jax.Array:
  """[num_phases] weight of each resolution's path: alpha for `phase`, 1 - alpha for phase - 1, 0 elsewhere (phase
  0: 1 for itself)."""
  levels = jnp.arange(num_phases)
  alpha = jnp.where(jnp.asarray(phase) == 0, 1.0, jnp.asarray(alpha, jnp.float32))
  return jnp.where(levels == phase, alpha, jnp.where(levels == jnp.asarray(phase) - 1, 1 - alpha, 0.0))


class ProGenerator(nn.Module):
  """Latent [N, L] -> image [N, R, R, out_channels] (R = 4 * 2 ** (len(features) - 1)), not squashed (linear
  to_rgb, as in the paper).

  Attributes:
    out_channels: image channels.
    features: width at 4x4, 8x8, ... (one entry per phase).
  """

  out_channels: int
  features: Sequence[int] = (128, 128, 64, 32)

  def setup(self):
    self.base_dense = EqualDense(16 * self.features[0], gain=math.sqrt(2) / 4)
    self.base_conv = EqualConv(self.features[0])
    self.first_convs = [EqualConv(f) for f in self.features[1:]]
    self.second_convs = [EqualConv(f) for f in self.features[1:]]
    self.to_rgb = [EqualConv(self.out_channels, 1, gain=1.0) for _ in self.features]

  @property
  def resolution(self) -> int:
    return 4 * 2 ** (len(self.features) - 1)

  def hidden(self, z: jax.Array) -> list[jax.Array]:
    """Activations at every resolution: [N, 4 * 2 ** p, 4 * 2 ** p, features[p]] for each phase p."""
    act = lambda x: pixel_norm(nn.leaky_relu(x, 0.2))
    x = act(self.base_dense(pixel_norm(z)).reshape(z.shape[0], 4, 4, self.features[0]))
    states = [act(self.base_conv(x))]
    for p in range(1, len(self.features)):
      x = act(self.first_convs[p - 1](upsample_nearest(states[-1], 2)))
      states.append(act(self.second_convs[p - 1](x)))
    return states

  def __call__(self, z: jax.Array, phase: jax.Array | int, alpha: jax.Array | float = 1.0,
               train: bool = False) -> jax.Array:
    """The phase-`phase` image faded in by `alpha` (see the module docstring), upsampled to [N, R, R, C].

    `phase` may be traced: every resolution is computed and the images are blended by `blend_weights`, so the
    paths of other phases get exactly zero weight (and zero gradients) and every shape is static.
    """
    del train
    weights = blend_weights(phase, alpha, len(self.features))
    images = [upsample_nearest(rgb(h), self.resolution // h.shape[1]) for rgb, h in zip(self.to_rgb, self.hidden(z))]
    return sum(w * image for w, image in zip(weights, images))


class ProDiscriminator(nn.Module):
  """Image [N, R, R, C] -> score [N] at a phase (see the module docstring).

  Attributes:
    features: width at 4x4, 8x8, ... (one entry per phase, as the generator's).
    group_size: minibatch standard-deviation group size.
  """

  features: Sequence[int] = (128, 128, 64, 32)
  group_size: int = 4

  def setup(self):
    self.from_rgb = [EqualConv(f, 1) for f in self.features]
    self.first_convs = [EqualConv(f) for f in self.features[1:]]
    self.second_convs = [EqualConv(f) for f in self.features[:-1]]  # block p ends at the width of phase p - 1
    self.final_conv = EqualConv(self.features[0])
    self.final_4x4 = EqualConv(self.features[0], 4, padding="VALID")
    self.output = EqualDense(1, gain=1.0)

  def _block(self, x: jax.Array, phase: int) -> jax.Array:
    """Block of phase `phase` >= 1: two 3x3 convs, average pool -> the previous phase's resolution and width."""
    x = nn.leaky_relu(self.first_convs[phase - 1](x), 0.2)
    x = nn.leaky_relu(self.second_convs[phase - 1](x), 0.2)
    return downsample_average(x, 2)

  def __call__(self, images: jax.Array, phase: jax.Array | int, alpha: jax.Array | float = 1.0,
               train: bool = False) -> jax.Array:
    """Scores [N] of images [N, R, R, C] at `phase` (may be traced), faded in by `alpha`.

    Every level runs: h[k-1] = s[k] * block[k](h[k]) + e[k-1] * from_rgb[k-1](x at level k-1), with the entry
    weight e = 1 at `phase`, 1 - alpha at phase - 1 and the block weight s = alpha at `phase`, 1 below it, 0 above
    (so levels above the phase contribute exactly zero).
    """
    del train
    top = len(self.features) - 1
    levels = jnp.arange(len(self.features))
    entry = blend_weights(phase, alpha, len(self.features))
    entry = entry.at[jnp.asarray(phase)].set(1.0)  # the phase's own input enters fully; alpha weighs its block
    through = jnp.where(levels == phase, jnp.where(jnp.asarray(phase) == 0, 1.0, alpha),
                        jnp.where(levels < phase, 1.0, 0.0))
    h = None
    for level in range(top, -1, -1):
      x = downsample_average(images, images.shape[1] // (4 * 2 ** level))
      entered = entry[level] * nn.leaky_relu(self.from_rgb[level](x), 0.2)
      h = entered if h is None else through[level + 1] * self._block(h, level + 1) + entered
    h = nn.leaky_relu(self.final_conv(minibatch_stddev(h, self.group_size)), 0.2)
    h = nn.leaky_relu(self.final_4x4(h), 0.2)
    return self.output(h.reshape(h.shape[0], -1))[:, 0]
