"""Class-conditional DCGAN networks (Mirza & Osindero, "Conditional Generative Adversarial Nets", 2014).

The generator takes a learned class embedding concatenated to the latent (unit-scale entries, as many as the latent
has, so at initialization the class moves a sample about as much as the latent does; a bare one-hot through the
N(0, 0.02) projection moved it ~0.13x as much and the trained classes came out alike) and, with `class_maps`, the
one-hot class as extra channels before every transposed convolution. Those maps make the class ~8.5x as strong as
the latent at initialization (width 32, 28x28); trained 1200 steps with them, each class row collapsed to nearly
one image per class (recall 0), so they are off by default. Two discriminator forms:
  * concatenation: one-hot class maps [N, H, W, K] concatenated to the image channels before the first convolution
    (the original cGAN's input conditioning, applied to a convolutional discriminator);
  * projection (Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018): score = w . phi(x) + b +
    embed(y) . phi(x), phi the flat trunk features.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.generative.dcgan import DCGAN_INIT, DiscriminatorTrunk, Generator


class ConditionalGenerator(nn.Module):
  """(latent [N, L], labels int [N]) -> images [N, H, W, C] in [-1, 1]."""

  image_shape: tuple[int, int, int]
  num_classes: int
  width: int = 64
  class_maps: bool = False  # also the one-hot class as channels before every transposed convolution

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array, train: bool = False) -> jax.Array:
    embedding = nn.Embed(self.num_classes, z.shape[-1], embedding_init=nn.initializers.normal(1.0),
                         name="label_embedding")(labels)
    inputs = jnp.concatenate([z.astype(jnp.float32), embedding], axis=-1)
    condition = jax.nn.one_hot(labels, self.num_classes) if self.class_maps else None
    return Generator(self.image_shape, self.width, name="generator")(inputs, train, condition=condition)


class ConcatDiscriminator(nn.Module):
  """(images [N, H, W, C], labels int [N]) -> scores [N], class maps concatenated to the input channels."""

  num_classes: int
  width: int = 64
  norm: str = "batch"

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array, train: bool = False) -> jax.Array:
    n, h, w, _ = images.shape
    maps = jnp.broadcast_to(jax.nn.one_hot(labels, self.num_classes)[:, None, None, :], (n, h, w, self.num_classes))
    x = jnp.concatenate([images.astype(jnp.float32), maps], axis=-1)
    features = DiscriminatorTrunk(self.width, self.norm, name="trunk")(x, train)
    return nn.Dense(1, kernel_init=DCGAN_INIT)(features)[:, 0]


class ProjectionDiscriminator(nn.Module):
  """(images [N, H, W, C], labels int [N]) -> scores [N] = dense(phi) + <embed(label), phi>."""

  num_classes: int
  width: int = 64
  norm: str = "batch"

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array, train: bool = False) -> jax.Array:
    features = DiscriminatorTrunk(self.width, self.norm, name="trunk")(images, train)
    unconditional = nn.Dense(1, kernel_init=DCGAN_INIT)(features)[:, 0]
    embedding = nn.Embed(self.num_classes, features.shape[-1], embedding_init=DCGAN_INIT)(labels)
    return unconditional + jnp.sum(embedding * features, axis=-1)
