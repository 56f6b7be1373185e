"""Classification losses: softmax cross-entropy with label smoothing or soft targets, sigmoid binary
cross-entropy, squared error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
  """Softmax cross-entropy per example with optional label smoothing (Szegedy et al., 2016).

  Args:
    logits: [N, K] unnormalized scores.
    labels: [N] integer classes.
    label_smoothing: mass moved uniformly over all K classes (0 = one-hot targets).

  Returns:
    [N] losses, computed in float32.
  """
  num_classes = logits.shape[-1]
  targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
  return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def soft_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Softmax cross-entropy per example against class probabilities (smoothed or mixed labels).

  Args:
    logits: [N, K] unnormalized scores.
    targets: [N, K] class probabilities (rows sum to 1).

  Returns:
    [N] losses -sum_k targets * log_softmax(logits), in float32.
  """
  return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def binary_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Sigmoid binary cross-entropy per element, numerically stable for large |logits|.

  Args:
    logits: [...] scores.
    targets: [...] 0/1 targets (or probabilities).

  Returns:
    [...] losses, float32.
  """
  return optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), targets.astype(jnp.float32))


def squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
  """Per-element (predictions - targets)^2 in float32."""
  return jnp.square(predictions.astype(jnp.float32) - targets.astype(jnp.float32))
