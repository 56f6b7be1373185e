"""Tukey's power transform of evaluated features before they are compared (inductive, per feature).

Each feature x becomes sign(x) |x|^power. With 0 < power < 1 on non-negative ReLU features (the backbone or conv maps
the embedding task evaluates), large activations shrink relative to small ones, so a few strong channels no longer
dominate a cosine and the features' distribution moves towards a Gaussian. Hu, Gripon, Pateux, "Leveraging the
Feature Distribution in Transfer-based Few-Shot Learning" (ICANN 2021) apply it with power 0.5 before few-shot
classification of novel classes. It transforms every feature on its own (no statistics of other images), so episodes
stay inductive. power = 1 leaves features unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def power_transform(features: jax.Array, power: float) -> jax.Array:
  """sign(x) |x|^power of every entry of `features` (any shape), as float32; power = 1 returns the input as it is.

  Args:
    features: [..., D] features (e.g. [N, D] embeddings or [N, h, w, C] conv maps).
    power: the exponent, > 0.

  Returns:
    Features of the same shape.
  """
  if power == 1.0:
    return features
  features = features.astype(jnp.float32)
  return jnp.sign(features) * jnp.abs(features) ** power
