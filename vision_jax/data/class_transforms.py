"""New training classes from old ones by a dihedral transform of every image of a class: the rotated-class
augmentation of few-shot learning (Santoro et al. 2016, Vinyals et al. 2016), used by the `embedding` task's
`class_transforms` on P x K batches, whose K consecutive rows are one class."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError


def dihedral_transform(images: jax.Array, transform: int) -> jax.Array:
  """Square images [N, S, S, C] turned counter-clockwise by (transform % 4) quarter turns, mirrored left-right
  first when transform >= 4 (as np.rot90(np.fliplr(image), transform % 4))."""
  if transform >= 4:
    images = images[:, :, ::-1]
  return jnp.rot90(images, transform % 4, axes=(1, 2))


def transformed_classes(rng: jax.Array, images: jax.Array, labels: jax.Array, count: int,
                        group_size: int) -> tuple[jax.Array, jax.Array]:
  """Each group of `group_size` consecutive rows (a class of a P x K batch) turned by one random
  `dihedral_transform` among the first `count`, its label becoming label * count + transform.

  Args:
    rng: draws one transform per group.
    images: [N, S, S, C] square images, N a multiple of `group_size`.
    labels: [N] int labels.
    count: 4 (quarter turns) or 8 (and mirror images).
    group_size: K, rows per class group.

  Returns:
    (images [N, S, S, C], labels [N]).
  """
  n = images.shape[0]
  if images.shape[1] != images.shape[2] or n % group_size:
    raise ConfigError(f"embedding.class_transforms needs square images and a batch of whole class groups; got "
                      f"images {tuple(images.shape)} and groups of {group_size}")
  transform = jnp.repeat(jax.random.randint(rng, (n // group_size,), 0, count), group_size)  # [N]
  variants = jnp.stack([dihedral_transform(images, t) for t in range(count)])  # [count, N, S, S, C]
  chosen = jnp.take_along_axis(variants, transform[None, :, None, None, None], axis=0)[0]
  return chosen, labels * count + transform.astype(labels.dtype)
