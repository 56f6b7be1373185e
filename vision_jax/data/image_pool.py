"""The history pool of generated images that CycleGAN's discriminators learn from (Shrivastava et al., 2017; Zhu
et al.'s `ImagePool`), as a pure function on a fixed-size array so it lives in the train state.

For each generated image of a batch, in order: while the pool holds fewer than `size` images the image is stored
and returned; once it is full, with probability 1/2 a uniformly chosen stored image is returned and the new image
takes its place, otherwise the new image is returned and the pool is left unchanged. Size 0 returns the batch.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

Pool = dict[str, jax.Array]


def init_pool(size: int, image_shape: Sequence[int], dtype=jnp.float32) -> Pool:
  """An empty pool: {"images": zeros [size, *image_shape], "count": int32 0 (images stored so far, <= size)}."""
  return {"images": jnp.zeros((size,) + tuple(image_shape), dtype), "count": jnp.zeros((), jnp.int32)}


def query_pool(pool: Pool, images: jax.Array, rng: jax.Array) -> tuple[Pool, jax.Array]:
  """Passes a batch through the pool (see the module docstring).

  Args:
    pool: from `init_pool` or a previous query.
    images: [N, *image_shape] newly generated images.
    rng: PRNG key of this query.

  Returns:
    (the updated pool, [N, *image_shape] images for the discriminator).
  """
  size = pool["images"].shape[0]
  if size == 0:
    return pool, images

  def one(pool, inputs):
    image, key = inputs
    swap_key, slot_key = jax.random.split(key)
    full = pool["count"] >= size
    swap = full & (jax.random.uniform(swap_key) < 0.5)
    slot = jnp.where(full, jax.random.randint(slot_key, (), 0, size), pool["count"])
    stored = pool["images"][slot]
    out = jnp.where(swap, stored, image)
    kept = jnp.where(full & ~swap, stored, image.astype(stored.dtype))
    return {"images": pool["images"].at[slot].set(kept), "count": jnp.minimum(pool["count"] + 1, size)}, out

  pool, out = jax.lax.scan(one, pool, (images, jax.random.split(rng, images.shape[0])))
  return pool, out
