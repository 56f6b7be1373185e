"""DCGAN (Radford, Metz, Chintala, "Unsupervised Representation Learning with Deep Convolutional GANs", ICLR 2016).

Generator: latent [N, L] -> a dense projection to a [base, base, width * 2^(S-1)] map, batch norm, ReLU, then S
stride-2 4x4 transposed convolutions, each halving the channels and doubling the size (batch norm + ReLU after all
but the last), tanh output. Discriminator: S stride-2 4x4 convolutions doubling the channels from `width`, LeakyReLU
0.2, batch norm after all but the first (or layer norm / nothing: a WGAN-GP critic must not use batch norm, whose
per-example gradients mix the batch), then a dense score. All convolution and dense kernels are drawn from
N(0, 0.02), batch-norm scales from N(1, 0.02), as in the paper.

S and base follow from the image size: halve while even and above 4 (28 -> 14 -> 7: S = 2, base 7; 32 -> 4: S = 3;
64 -> 4: S = 4).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

DCGAN_INIT = nn.initializers.normal(0.02)
NORMS = ("batch", "layer", "none")


def _scale_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def num_stages(size: int) -> tuple[int, int]:
  """(stride-2 stages S, base size) for square images of side `size`: halve while even and above 4."""
  stages = 0
  while size % 2 == 0 and size > 4:
    size //= 2
    stages += 1
  if stages == 0:
    raise ValueError(f"image side {size} cannot be reached by doubling a base map; use e.g. 28, 32 or 64")
  return stages, size


def batch_norm(train: bool, name: str | None = None) -> nn.BatchNorm:
  """Batch norm with DCGAN's initialization (PyTorch's momentum 0.1, eps 1e-5)."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, scale_init=_scale_init, name=name)


class Generator(nn.Module):
  """Latent [N, L] -> images [N, H, W, C] in [-1, 1].

  Attributes:
    image_shape: (H, W, C) with H == W (28, 32, 64, ...).
    width: channels of the last hidden map (ngf); the first has width * 2^(S-1).
  """

  image_shape: tuple[int, int, int]
  width: int = 64

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False, condition: jax.Array | None = None) -> jax.Array:
    """`condition` [N, K] (e.g. a one-hot class), when given, is broadcast to [N, h, w, K] maps and concatenated to
    the channels before every transposed convolution, so the class reaches every resolution."""
    stages, base = num_stages(self.image_shape[0])
    channels = self.width * 2 ** (stages - 1)
    x = nn.Dense(base * base * channels, kernel_init=DCGAN_INIT, use_bias=False)(z.astype(jnp.float32))
    x = nn.relu(batch_norm(train)(x.reshape((z.shape[0], base, base, channels))))
    for stage in range(stages):
      last = stage == stages - 1
      if condition is not None:
        n, h, w, _ = x.shape
        maps = jnp.broadcast_to(condition.astype(jnp.float32)[:, None, None, :], (n, h, w, condition.shape[-1]))
        x = jnp.concatenate([x, maps], axis=-1)
      features = self.image_shape[2] if last else channels // 2 ** (stage + 1)
      x = nn.ConvTranspose(features, (4, 4), (2, 2), padding="SAME", kernel_init=DCGAN_INIT, use_bias=last)(x)
      x = jnp.tanh(x) if last else nn.relu(batch_norm(train)(x))
    return x


class DiscriminatorTrunk(nn.Module):
  """Images [N, H, W, C] -> flat features [N, F] (the convolutions of the discriminator, before its score).

  Attributes:
    width: channels of the first convolution (ndf).
    norm: "batch", "layer" (per example over H, W, C) or "none" (after every convolution but the first).
  """

  width: int = 64
  norm: str = "batch"

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    if self.norm not in NORMS:
      raise ValueError(f"unknown discriminator norm {self.norm!r}; use one of {', '.join(NORMS)}")
    stages, _ = num_stages(images.shape[1])
    x = images.astype(jnp.float32)
    for stage in range(stages):
      x = nn.Conv(self.width * 2 ** stage, (4, 4), (2, 2), padding="SAME", kernel_init=DCGAN_INIT,
                  use_bias=stage == 0 or self.norm != "batch")(x)
      if stage > 0 and self.norm == "batch":
        x = batch_norm(train)(x)
      elif stage > 0 and self.norm == "layer":
        x = nn.LayerNorm(reduction_axes=(-3, -2, -1), feature_axes=(-3, -2, -1))(x)
      x = nn.leaky_relu(x, 0.2)
    return x.reshape((x.shape[0], -1))


class Discriminator(nn.Module):
  """Images [N, H, W, C] -> scores [N] (logits for the GAN losses, unbounded critic values for WGANs)."""

  width: int = 64
  norm: str = "batch"

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    features = DiscriminatorTrunk(self.width, self.norm, name="trunk")(images, train)
    return nn.Dense(1, kernel_init=DCGAN_INIT)(features)[:, 0]
