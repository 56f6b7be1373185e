"""Balanced positive/negative sampling of matched anchors or proposals (torchvision's
`BalancedPositiveNegativeSampler`, used by Faster R-CNN's RPN and its box head), with static shapes.

torchvision draws `torch.randperm(num_positives)` and `torch.randperm(num_negatives)` and keeps the first
entries; here those permutations can be passed in, so a result can be reproduced exactly, or drawn from a key.
"""

import jax
import jax.numpy as jnp

from vision_jax.errors import UserError


def sample_counts(labels: jax.Array, batch_size_per_image: int,
                  positive_fraction: float) -> tuple[jax.Array, jax.Array]:
  """How many positives (label >= 1) and negatives (label == 0) torchvision's sampler takes: two int32 scalars.

  num_pos = min(#positives, int(batch_size * fraction)); num_neg = min(#negatives, batch_size - num_pos).
  """
  num_pos = jnp.minimum(jnp.sum(labels >= 1), int(batch_size_per_image * positive_fraction))
  num_neg = jnp.minimum(jnp.sum(labels == 0), batch_size_per_image - num_pos)
  return num_pos.astype(jnp.int32), num_neg.astype(jnp.int32)


def _select(candidates: jax.Array, count: jax.Array, max_count: int, permutation: jax.Array | None,
            key: jax.Array | None) -> jax.Array:
  """Mask `[A]` of `count` candidates: the permutation's first picks among them in index order, or random."""
  a = candidates.shape[0]
  if max_count == 0:
    return jnp.zeros((a,), bool)
  if permutation is not None:
    permutation = jnp.asarray(permutation, jnp.int32)
    if permutation.ndim != 1 or permutation.shape[0] < max_count:
      raise UserError(f'a sampling permutation needs shape [K] with K >= {max_count}; got {permutation.shape}: '
                      'pass the first entries of torch.randperm(n) padded to that length.')
    (ordered,) = jnp.nonzero(candidates, size=a, fill_value=a)
    picks = ordered[jnp.clip(permutation[:max_count], 0, a - 1)]
  else:
    priority = jnp.where(candidates, jax.random.uniform(key, (a,)), 2.0)
    picks = jnp.argsort(priority)[:max_count]
    # Fewer entries than max_count: pad the picks (the rows past `count` are dropped below anyway).
    picks = jnp.pad(picks, (0, max_count - picks.shape[0]), constant_values=a)
  picks = jnp.where(jnp.arange(max_count) < count, picks, a)
  return jnp.zeros((a,), bool).at[picks].set(True, mode='drop')


def balanced_sample(labels: jax.Array, batch_size_per_image: int, positive_fraction: float,
                    permutation_pos: jax.Array | None = None, permutation_neg: jax.Array | None = None,
                    key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """torchvision's `BalancedPositiveNegativeSampler` for one image: masks of the sampled positives and negatives.

  Positives are labels >= 1, negatives labels == 0, anything else (-1) is never sampled. The sample takes
  num_pos = min(#pos, int(batch * fraction)) positives and num_neg = min(#neg, batch - num_pos) negatives.
  With permutations, the k-th sampled positive is the `permutation_pos[k]`-th positive in index order (as
  torchvision's `positive[torch.randperm(#pos)[:num_pos]]`), likewise for negatives; otherwise a uniformly
  random subset is drawn from `key`. Use `jax.vmap` for a batch.

  Args:
    labels: `[A]` int or float labels: >= 1 positive, 0 negative, < 0 ignored.
    batch_size_per_image: anchors (256 for the RPN) or proposals (512 for the box head) per image.
    positive_fraction: the most positives may take (0.5 for the RPN, 0.25 for the box head).
    permutation_pos: `[K >= int(batch * fraction)]` int, the first entries of a permutation of range(#pos);
      entries past #pos are ignored.
    permutation_neg: `[K >= batch]` int, likewise for the negatives.
    key: PRNG key, used when the permutations are not given.

  Returns:
    `pos_mask [A]` and `neg_mask [A]` bool.
  """
  if (permutation_pos is None) != (permutation_neg is None):
    raise UserError('balanced_sample needs both permutation_pos and permutation_neg, or neither (then a key).')
  if permutation_pos is None and key is None:
    raise UserError('balanced_sample needs a key or the two permutations: pass key=jax.random.key(...).')
  labels = jnp.asarray(labels)
  if labels.ndim != 1:
    raise UserError(f'balanced_sample labels must have shape [A]; got {labels.shape}: use jax.vmap for a batch.')
  num_pos, num_neg = sample_counts(labels, batch_size_per_image, positive_fraction)
  key_pos, key_neg = (None, None) if key is None else jax.random.split(key)
  max_pos = int(batch_size_per_image * positive_fraction)
  pos = _select(labels >= 1, num_pos, max_pos, permutation_pos, key_pos)
  neg = _select(labels == 0, num_neg, batch_size_per_image, permutation_neg, key_neg)
  return pos, neg
