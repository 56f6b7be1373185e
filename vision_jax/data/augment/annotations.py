"""Dataset annotations in the form augmentation moves them: masks as channels, keypoint flip permutations.

`Sample.masks` is one integer array [N, H, W, K] whose channels are warped together by nearest-neighbour
sampling and filled with 0 where the warp finds nothing. `pack_masks` puts a semantic mask and instance masks
in it so that 0 means "no label" everywhere:

  channel 0 (with a semantic mask): class c stored as c + 1, `IGNORE_INDEX` (unlabelled) as 0;
  the following M channels (with instance masks): the 0/1 instance masks as they are.

`unpack_masks` reverses it (0 in the semantic channel back to `IGNORE_INDEX`).

    >>> masks = pack_masks(semantic=batch["semantic_mask"], instance=batch["instance_masks"])
    >>> out = pipeline.apply(rng, images, boxes=batch["boxes"], masks=masks)
    >>> semantic, instance = unpack_masks(out.masks, semantic=True)
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.data.features import IGNORE_INDEX
from vision_jax.errors import DataError


def pack_masks(semantic: jax.Array | None = None, instance: jax.Array | None = None) -> jax.Array:
  """Semantic [N, H, W] and/or instance [N, M, H, W] masks -> integer [N, H, W, K] (K = 1 + M, 1 or M).

  The semantic mask's classes are shifted by one (`IGNORE_INDEX` -> 0); uint8 semantic masks stay uint8 (classes
  0..254 become 1..255). Instance masks are cast to the semantic mask's dtype when both are given.
  """
  channels = []
  if semantic is not None:
    semantic = jnp.asarray(semantic)
    shifted = jnp.where(semantic == IGNORE_INDEX, 0, semantic.astype(jnp.int32) + 1)
    channels.append(shifted.astype(semantic.dtype)[..., None])
  if instance is not None:
    instance = jnp.moveaxis(jnp.asarray(instance), 1, -1)
    channels.append(instance.astype(channels[0].dtype) if channels else instance)
  if not channels:
    raise DataError("pack_masks needs a semantic mask, instance masks or both")
  return jnp.concatenate(channels, axis=-1) if len(channels) > 1 else channels[0]


def unpack_masks(masks: jax.Array, semantic: bool) -> tuple[jax.Array | None, jax.Array | None]:
  """Integer [N, H, W, K] masks of `pack_masks` -> (semantic [N, H, W] or None, instance [N, M, H, W] or None).

  Args:
    masks: the packed masks.
    semantic: whether channel 0 is a semantic mask.
  """
  instance_channels = masks[..., 1:] if semantic else masks
  instance = jnp.moveaxis(instance_channels, -1, 1) if instance_channels.shape[-1] else None
  if not semantic:
    return None, instance
  stored = masks[..., 0].astype(jnp.int32)
  return jnp.where(stored == 0, IGNORE_INDEX, stored - 1).astype(masks.dtype), instance


def flip_permutation(num_keypoints: int, flip_pairs: Sequence[tuple[int, int]]) -> np.ndarray:
  """[K] int32 permutation swapping each (left, right) pair of `Feature.flip_pairs`; other keypoints stay.

  Raises:
    DataError: a keypoint index out of range or in two pairs.
  """
  perm = np.arange(num_keypoints, dtype=np.int32)
  seen: set[int] = set()
  for left, right in flip_pairs:
    if not (0 <= left < num_keypoints and 0 <= right < num_keypoints) or {left, right} & seen:
      raise DataError(f"keypoint flip pairs {list(flip_pairs)} must name each of the {num_keypoints} keypoints at "
                      "most once; fix the keypoints feature's flip_pairs")
    seen |= {left, right}
    perm[left], perm[right] = right, left
  return perm
