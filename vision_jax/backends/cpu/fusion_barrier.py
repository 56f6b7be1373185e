"""A buffer XLA:CPU cannot fuse away: values that its consumers would otherwise recompute element by element.

XLA fuses a producer into every consumer loop that reads it. That saves a buffer when the consumer reads each
element once, and costs a great deal when it reads elements many times or recomputes an index chain per
element: the weight gradient's transposed read of a batch-normalised input (see `rewrites`), or RoIAlign's
gather, whose loop recomputed every sample's index and weight (and the concatenation of the pyramid's levels)
once per channel (`ops.roi_align.gather_combine`: 137 ms of a 166 ms R-CNN inference step).

A conditional is a fusion boundary: its results are buffers. `materialize` routes values through one whose
predicate is true at run time but unknown at compile time; the other branch returns different values (NaN or
zeros), so XLA cannot hoist the values out of it either.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def _poisoned(x: jax.Array) -> jax.Array:
  if jnp.issubdtype(x.dtype, jnp.inexact):
    return jnp.full_like(x, jnp.nan)
  return jnp.zeros_like(x)


def materialize(values: Any, keep: jax.Array) -> Any:
  """Returns `values` (any pytree of arrays) as buffers of their own when `keep` is true at run time.

  Args:
    values: arrays to materialize.
    keep: scalar bool computed at run time, true whenever the caller's values are meaningful (for example
      `w[0] == w[0]` for a layer's kernel, or a bound that holds by construction).

  Returns:
    `values` unchanged when `keep`; otherwise NaN for floating arrays and zeros for the others.
  """
  return jax.lax.cond(keep, lambda v: v, lambda v: jax.tree_util.tree_map(_poisoned, v), values)
