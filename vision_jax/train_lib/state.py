"""The train state: everything a step reads and writes, as one pytree (checkpointed whole).

Networks are named: a classifier has one, "model"; a GAN has "generator" and "critic". Each network has its own
parameters, batch statistics and optimizer state, so a step can update any subset of them and leave the others
bit-identical (one `optax.multi_transform` state would still move a frozen network through momentum).
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.struct
import jax
import jax.numpy as jnp
import optax

# Bumped whenever the layout of a saved state changes; a checkpoint of another format is refused in one line.
STATE_FORMAT = 2


@flax.struct.dataclass
class TrainState:
  """Parameters, optimizer states and the run's position.

  Attributes:
    step: number of loop steps taken so far (int32 scalar); the loop advances it after every train step.
    params: network name -> parameters.
    batch_stats: network name -> batch-norm running statistics ({} for networks without batch norm).
    opt_state: network name -> optimizer state.
    rng: base PRNG key data (uint32 [2]); step `s` uses `fold_in(rng, s)`.
    lr_scale: multiplier on every update, lowered by reduce-LR-on-plateau (float32 scalar).
    extras: anything else a task carries between steps (EMA weights, a fade-in alpha, an image pool).
  """

  step: jax.Array
  params: dict[str, Any]
  batch_stats: dict[str, Any]
  opt_state: dict[str, Any]
  rng: jax.Array
  lr_scale: jax.Array
  extras: dict[str, Any] = flax.struct.field(default_factory=dict)

  @classmethod
  def create(cls, variables: Mapping[str, Mapping[str, Any]], txs: Mapping[str, optax.GradientTransformation],
             rng: jax.Array, extras: Mapping[str, Any] | None = None) -> "TrainState":
    """The initial state.

    Args:
      variables: network name -> `module.init` variables ({"params": ..., "batch_stats"?: ...}).
      txs: network name -> its optimizer (every network in `variables` needs one).
      rng: raw PRNG key of the training steps.
      extras: initial extras.
    """
    params = {name: v["params"] for name, v in variables.items()}
    return cls(step=jnp.zeros((), jnp.int32), params=params,
               batch_stats={name: v.get("batch_stats", {}) for name, v in variables.items()},
               opt_state={name: txs[name].init(p) for name, p in params.items()}, rng=rng,
               lr_scale=jnp.ones((), jnp.float32), extras=dict(extras or {}))

  def variables(self, name: str = "model") -> dict[str, Any]:
    """The variables of network `name` for `module.apply`."""
    if self.batch_stats.get(name):
      return {"params": self.params[name], "batch_stats": self.batch_stats[name]}
    return {"params": self.params[name]}

  def apply_gradients(self, name: str, grads: Any, tx: optax.GradientTransformation,
                      batch_stats: Any = None) -> "TrainState":
    """Updates network `name` only: its parameters by `tx` (scaled by `lr_scale`) and, when given, its batch
    statistics. Every other network's parameters, statistics and optimizer state stay as they are."""
    updates, opt_state = tx.update(grads, self.opt_state[name], self.params[name])
    updates = jax.tree.map(lambda u: u * self.lr_scale.astype(u.dtype), updates)
    params = optax.apply_updates(self.params[name], updates)
    new = self.replace(params={**self.params, name: params}, opt_state={**self.opt_state, name: opt_state})
    if batch_stats is not None:
      new = new.replace(batch_stats={**self.batch_stats, name: batch_stats})
    return new

  def step_rng(self) -> jax.Array:
    """This step's key: `fold_in(rng, step)`."""
    return jax.random.fold_in(self.rng, self.step)
