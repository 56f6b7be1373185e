"""Classification metrics on batches: top-k correctness and confusion matrices."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def correct(logits: jax.Array, labels: jax.Array, k: int = 1) -> jax.Array:
  """Whether the label is among the k highest logits.

  Args:
    logits: [N, K] scores.
    labels: [N] integer classes.
    k: how many top classes count as a hit (1 = accuracy).

  Returns:
    [N] float32, 1.0 for a hit. Ties are broken towards the lower class index, as `argmax` does.
  """
  if k == 1:
    return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  _, top = jax.lax.top_k(logits, k)
  return jnp.any(top == labels[:, None], axis=-1).astype(jnp.float32)


def confusion_matrix(labels: jax.Array, predictions: jax.Array, num_classes: int,
                     weights: jax.Array | None = None) -> jax.Array:
  """Counts of (true class, predicted class) pairs.

  Args:
    labels: [N] true classes.
    predictions: [N] predicted classes.
    num_classes: K.
    weights: optional [N] weights (0 for padding).

  Returns:
    [K, K] float32; row = true class, column = predicted class.
  """
  if weights is None:
    weights = jnp.ones(labels.shape, jnp.float32)
  index = labels * num_classes + predictions
  counts = jnp.zeros((num_classes * num_classes,), jnp.float32).at[index].add(weights)
  return counts.reshape(num_classes, num_classes)
