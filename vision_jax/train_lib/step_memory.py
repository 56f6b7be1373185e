"""Trading compute for memory inside a train step: gradient accumulation and rematerialization.

* `accumulate_gradients` splits a global batch into k equal micro-batches and scans over them, summing
  gradients: peak activation memory is that of one micro-batch, and the update equals the big batch's
  whenever the loss is a mean over examples and nothing couples examples across micro-batches. Batch norm does
  couple them: each micro-batch is normalized with its own statistics (as on k devices with unsynchronized batch
  norm), and the running statistics are updated k times.
* `remat_policy` names a `jax.checkpoint` policy for the model's forward pass: "full" keeps only the inputs and
  recomputes the whole forward pass during the backward pass; "dots" keeps the outputs of convolutions and
  matrix products and recomputes the cheap elementwise layers (batch norm, activations) between them.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError

REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def remat_policy(name: str) -> Optional[Callable[..., bool]]:
  """The `jax.checkpoint` policy named `name` ("none" -> None: no rematerialization)."""
  if name not in REMAT_POLICIES:
    raise ConfigError(f"unknown train.remat {name!r}; choose one of {', '.join(REMAT_POLICIES)}")
  return REMAT_POLICIES[name]


def maybe_remat(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
  """`fn` wrapped in `jax.checkpoint` with the named policy, or `fn` itself for "none"."""
  if name == "none":
    remat_policy(name)
    return fn
  return jax.checkpoint(fn, policy=remat_policy(name))


def split_micro_batches(batch: Any, num_micro: int) -> Any:
  """Reshapes every leaf [N, ...] of `batch` to [num_micro, N / num_micro, ...] (contiguous slices)."""

  def split(x: jax.Array) -> jax.Array:
    if x.shape[0] % num_micro:
      raise ConfigError(f"the batch of {x.shape[0]} examples does not split into {num_micro} equal micro-batches; "
                        "make input.batch_size a multiple of train.grad_accum_steps")
    return x.reshape((num_micro, x.shape[0] // num_micro) + x.shape[1:])

  return jax.tree.map(split, batch)


def accumulate_gradients(grad_fn: Callable[[Any, Any, Any, jax.Array], tuple[Any, tuple[Any, Any]]], params: Any,
                         batch: Any, carry: Any, num_micro: int) -> tuple[Any, Any, Any]:
  """Mean gradient over `num_micro` micro-batches of `batch`, computed one micro-batch at a time.

  Args:
    grad_fn: (params, micro_batch, carry, micro_index) -> (grads, (outputs, new_carry)); `grads` of the
      micro-batch's mean loss, `outputs` per-example arrays [n, ...] to return, `carry` state threaded through
      the micro-batches in order (e.g. batch-norm statistics).
    params: the parameters.
    batch: pytree of arrays [N, ...] with N divisible by `num_micro`.
    carry: initial carry.
    num_micro: number of micro-batches k (1: a plain call).

  Returns:
    (grads averaged over micro-batches, outputs concatenated back to [N, ...], final carry).
  """
  if num_micro == 1:
    grads, (outputs, carry) = grad_fn(params, batch, carry, jnp.zeros((), jnp.int32))
    return grads, outputs, carry
  micro = split_micro_batches(batch, num_micro)

  def body(state, xs):
    grad_sum, carry = state
    micro_batch, index = xs
    grads, (outputs, carry) = grad_fn(params, micro_batch, carry, index)
    return (jax.tree.map(jnp.add, grad_sum, grads), carry), outputs

  zeros = jax.tree.map(jnp.zeros_like, params)
  (grad_sum, carry), outputs = jax.lax.scan(body, (zeros, carry), (micro, jnp.arange(num_micro)))
  grads = jax.tree.map(lambda g: g / num_micro, grad_sum)
  outputs = jax.tree.map(lambda o: o.reshape((-1,) + o.shape[2:]), outputs)
  return grads, outputs, carry
