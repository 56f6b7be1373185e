"""Two fixes for slow convolutional training steps on XLA:CPU, applied by the train loop and the benchmark.

Found by profiling a ResNet-18 (CIFAR stem) train step on a 2-core x86 CPU (see README, "Speed"):

1. **Convolution library.** jaxlib 0.10 routes convolutions to YNNPACK by default, which ran the 3x3 convs
   of ResNet stages 1-2 at about half the speed of XLA's own Eigen convolution (e.g. 64->64 channels at 32x32,
   batch 128: 135 ms vs 63 ms forward). `compiler_options()` turns the YNNPACK fusions off for the steps we
   compile, per `jax.jit` call, so it never touches a user's other computations.
2. **Recomputed activations in the weight gradient.** The weight gradient of a convolution reads the layer's
   input in a transposed layout. XLA fuses the transpose with the elementwise chain that produced the input
   (batch-norm scale/shift, ReLU, the residual additions of every earlier block), so each backward transpose
   recomputes that chain through strided reads: 10x slower than a plain transpose (210 ms vs 18 ms for one
   [128, 32, 32, 64] activation). `conv_input_barriers()` makes every convolution read a materialized input,
   through a conditional that XLA cannot fuse into its consumers.

Both are on by default on the CPU backend and can be switched off (`compile.xla_cpu_tuning=False` in a config,
or `VISION_JAX_XLA_CPU_TUNING=0` in the environment) to measure the difference.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Iterator, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

# DebugOptions field -> value. An empty list of fusion types disables YNNPACK fusions (convolutions, dots).
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def tuning_enabled(requested: bool = True) -> bool:
  """Whether the CPU fixes apply: requested, on the CPU backend, and not disabled by the environment."""
  if not requested or os.environ.get("VISION_JAX_XLA_CPU_TUNING", "1").lower() in ("0", "false", "no", "off"):
    return False
  return jax.default_backend() == "cpu"


@functools.cache
def _options_supported() -> bool:
  """True if this jaxlib accepts our XLA options (a compile with an unknown option fails)."""
  try:
    jax.jit(lambda x: x + 1, compiler_options=_CPU_OPTIONS).lower(jnp.zeros(())).compile()
    return True
  except Exception:  # an older or newer XLA without the field: run with its defaults
    return False


def compiler_options(requested: bool = True) -> Optional[dict[str, str]]:
  """XLA options for `jax.jit(..., compiler_options=...)` of a train or eval step; None when not applicable."""
  if tuning_enabled(requested) and _options_supported():
    return dict(_CPU_OPTIONS)
  return None


def materialize(x: jax.Array, witness: jax.Array) -> jax.Array:
  """Returns `x` as a buffer of its own that XLA cannot recompute inside the consumers of the result.

  Args:
    x: any array.
    witness: an array available at run time (a layer's kernel); its first element picks the branch, so the
      conditional cannot be folded away at compile time.

  Returns:
    `x` unchanged, or all-NaN if the witness's first element is NaN (then the model has diverged anyway).
  """
  first = jnp.ravel(witness)[0]
  return jax.lax.cond(first == first, lambda a: a, lambda a: jnp.full_like(a, jnp.nan), x)


_CONV_TYPES = (nn.Conv, nn.ConvTranspose)


def _barrier_interceptor(next_fun, args, kwargs, context):
  module = context.module
  if (context.method_name != "__call__" or not isinstance(module, _CONV_TYPES) or not args
      or not module.has_variable("params", "kernel")):  # at init the kernel does not exist yet
    return next_fun(*args, **kwargs)
  inputs = materialize(args[0], module.get_variable("params", "kernel"))
  return next_fun(inputs, *args[1:], **kwargs)


@contextlib.contextmanager
def conv_input_barriers(enabled: bool = True) -> Iterator[None]:
  """While tracing inside this context, every Flax `Conv`/`ConvTranspose` reads a materialized input.

  Use it around the traced body of a train step (the forward-only eval step gains nothing from it).
  """
  if not enabled:
    yield
    return
  with nn.intercept_methods(_barrier_interceptor):
    yield


def jit_step(fun: Any, tuned: bool, **jit_kwargs: Any) -> Any:
  """`jax.jit(fun, **jit_kwargs)` with the CPU compiler options when `tuned` and applicable."""
  options = compiler_options(tuned)
  if options:
    jit_kwargs["compiler_options"] = options
  return jax.jit(fun, **jit_kwargs)
