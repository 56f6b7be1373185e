"""The train state: everything a step reads and writes, as one pytree (checkpointed whole)."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """Parameters, optimizer state and the run's position.

  Attributes:
    step: number of updates applied so far (int32 scalar).
    params: model parameters.
    batch_stats: batch-norm running statistics ({} for models without batch norm).
    opt_state: optimizer state.
    rng: base PRNG key data (uint32 [2]); step `s` uses `fold_in(rng, s)`.
    lr_scale: multiplier on every update, lowered by reduce-LR-on-plateau (float32 scalar).
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: optax.OptState
  rng: jax.Array
  lr_scale: jax.Array

  @classmethod
  def create(cls, variables: dict[str, Any], tx: optax.GradientTransformation, rng: jax.Array) -> "TrainState":
    """Builds the initial state from `model.init` variables and a raw PRNG key."""
    params = variables["params"]
    return cls(step=jnp.zeros((), jnp.int32), params=params, batch_stats=variables.get("batch_stats", {}),
               opt_state=tx.init(params), rng=rng, lr_scale=jnp.ones((), jnp.float32))

  def variables(self) -> dict[str, Any]:
    """The model variables for `model.apply`."""
    if self.batch_stats:
      return {"params": self.params, "batch_stats": self.batch_stats}
    return {"params": self.params}
