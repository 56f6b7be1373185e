"""Fixes for slow convolutional training steps on XLA:CPU, applied by the train loop and the benchmark.

Found by profiling ResNet-18 (CIFAR stem), LeNet-5 and ResNet-50 train steps on a 2-core x86 CPU (see README,
"Speed"):

1. **Convolution library.** jaxlib 0.10 routes convolutions to YNNPACK by default, which ran the 3x3 convs
   of ResNet stages 1-2 at about half the speed of XLA's own Eigen convolution (e.g. 64->64 channels at 32x32,
   batch 128: 135 ms vs 63 ms forward). `compiler_options()` turns the YNNPACK fusions off for the steps we
   compile, per `jax.jit` call, so it never touches a user's other computations.
2. **Recomputed activations in the weight gradient.** The weight gradient of a convolution reads the layer's
   input in a transposed layout. XLA fuses the transpose with the elementwise chain that produced the input
   (batch-norm scale/shift, ReLU, the residual additions of every earlier block), so each backward transpose
   recomputes that chain through strided reads: 10x slower than a plain transpose (210 ms vs 18 ms for one
   [128, 32, 32, 64] activation). Every convolution now reads a materialized input, through a conditional that
   XLA cannot fuse into its consumers.
3. **Batch-norm reductions.** Per-channel sums of channels-last activations lower to windowed reductions
   that took 428 ms of the ~3 s step (forward statistics and the gradients' sums); `layers.channel_stats`
   computes them over a wider view of the same buffer (5.4 -> 0.9 ms for [128, 32, 32, 64]).
4. **Strided input gradients.** XLA computes them as convolutions over a zero-dilated gradient;
   `layers.conv_vjp` uses the phase decomposition instead (98 -> 48 ms for a stride-2 3x3, 64 -> 128 channels).
5. **Grayscale first layers.** A convolution of one input channel runs far below Eigen's speed on many channels
   (LeNet-5's first layer: 9.8 ms); as a fused sum of shifted products it takes 0.74 ms.
6. **LeNet-sized layers.** Eigen's input gradient of a stride-1 conv with few input channels on small maps
   (LeNet-5's 6 -> 16 channels on 14x14: 6.2 ms) is faster as a matrix product into per-tap patches plus an
   overlap-add; a conv whose kernel covers its whole input (LeNet-5's C5) is a dense layer, whose gradients as
   matrix products take 0.6 ms instead of 5.2 ms (`layers.conv_vjp`).
7. **Wide per-channel sums.** From 256 channels on, `layers.channel_stats` sums as a matrix-vector product
   (XLA's column sums with the batch-norm gradient fused in took over a second of a ResNet-50 step), and conv
   biases' gradients go through it too.

8. **Transposed convolutions.** XLA's weight gradient of a strided `nn.ConvTranspose` (a convolution of the
   zero-dilated input) ran 16-30x slower than its forward pass (31 ms against 1.9 ms for a DCGAN generator layer);
   `conv_transpose_vjp` computes both gradients through the dual strided convolution (11-20x faster together).

`train_step_rewrites()` applies 2-8 to the Flax layers of a traced train step. All are on by default on the
CPU backend and can be switched off (`compile.xla_cpu_tuning=False` in a config, or
`VISION_JAX_XLA_CPU_TUNING=0` in the environment) to measure the difference.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Iterator, Optional

import flax.linen as nn
from flax.linen import linear
import jax
import jax.numpy as jnp

from vision_jax.backends.cpu import channel_stats, conv_transpose_vjp, conv_vjp, fusion_barrier

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
  return fusion_barrier.materialize(x, first == first)


_CONV_TYPES = (nn.Conv, nn.ConvTranspose)


def _pair(value: Any) -> tuple[int, ...]:
  """A Flax layer's per-axis setting (None, an int or a sequence) as a tuple over two spatial axes (None -> 1)."""
  if value is None:
    return (1, 1)
  return (value, value) if isinstance(value, int) else tuple(value)


def _few_channel_form(x: jax.Array, w: jax.Array, strides: tuple[int, ...], padding: Any) -> jax.Array:
  del strides  # always (1, 1)
  return conv_vjp.few_channel_conv2d(x, w, padding)


def _full_window_form(x: jax.Array, w: jax.Array, strides: tuple[int, ...], padding: Any) -> jax.Array:
  del strides  # one output pixel whatever the stride
  return conv_vjp.full_window_conv2d(x, w, padding)


def _transposed_form(x: jax.Array, w: jax.Array, strides: tuple[int, ...], padding: Any) -> jax.Array:
  return conv_transpose_vjp.conv_transpose2d(x, w, strides, padding)


def _conv_plan(module: nn.Conv, inputs: jax.Array) -> Optional[tuple[Any, tuple[int, ...], Any]]:
  """(form, strides, explicit padding) for a plain 2-D `nn.Conv` that a `conv_vjp` form speeds up, else None.

  Forms: `conv_vjp.full_window_conv2d` when the kernel covers the whole padded input (LeNet-5's C5);
  `conv_vjp.few_channel_conv2d` for stride-1 convs of one input channel (grayscale first layers);
  `conv_vjp.conv2d` where `conv_vjp.input_grad_form` picks a faster input gradient (strided convs larger than
  1x1 with 16+ input channels, stride-1 convs of 2-15 channels on small maps), or where the conv has a bias
  (whose gradient then goes through `channel_stats`). 1x1 strided convs stay with XLA:
  in Keras's ResNet-50 (stride on the block's first 1x1) routing them made the step 15% slower although each
  gradient alone was faster.
  """
  kernel_size = _pair(module.kernel_size)
  strides = _pair(module.strides)
  if (type(module) is not nn.Conv or inputs.ndim != 4 or len(kernel_size) != 2
      or _pair(module.input_dilation) != (1, 1) or _pair(module.kernel_dilation) != (1, 1)
      or module.feature_group_count != 1 or not module.shared_weights or module.mask is not None
      or module.conv_general_dilated is not None or module.conv_general_dilated_cls is not None):
    return None
  padding = linear.canonicalize_padding(module.padding, 2)
  if padding in ("SAME", "VALID"):
    padding = jax.lax.padtype_to_pads(inputs.shape[1:3], kernel_size, strides, padding)
  elif isinstance(padding, str):  # CIRCULAR, REFLECT, CAUSAL: Flax pads the input itself
    return None
  padding = tuple(tuple(int(p) for p in pads) for pads in padding)
  padded_hw = tuple(inputs.shape[1 + d] + sum(padding[d]) for d in range(2))
  out_hw = [(padded_hw[d] - kernel_size[d]) // strides[d] + 1 for d in range(2)]
  weight_shape = (*kernel_size, inputs.shape[-1], module.features)
  if padded_hw == kernel_size and kernel_size != (1, 1):
    form = _full_window_form
  elif strides == (1, 1) and inputs.shape[-1] == 1:  # on 3 channels (simple_cnn on CIFAR) the step got 7% slower
    form = _few_channel_form
  elif module.use_bias or conv_vjp.input_grad_form(inputs.shape, weight_shape, strides, out_hw) is not None:
    form = conv_vjp.conv2d
  else:
    return None
  return form, strides, padding


def _rewritten_conv(module: nn.Conv, inputs: jax.Array, form: Any, strides: tuple[int, ...],
                    padding: Any) -> jax.Array:
  """What `nn.Conv.__call__` (or `nn.ConvTranspose.__call__`) computes, through one of the forms above."""
  kernel = module.get_variable("params", "kernel")
  bias = module.get_variable("params", "bias") if module.use_bias else None
  inputs, kernel, bias = module.promote_dtype(inputs, kernel, bias, dtype=module.dtype)
  y = form(inputs, kernel, strides, padding)
  if form is _few_channel_form:
    # A fused sum of products: without a buffer of its own XLA recomputes it in every consumer (measured: the
    # max-pool gradient of LeNet-5 recomputing it 4 times, 26 ms per step).
    y = materialize(y, kernel)
  # The bias gradient is a per-channel sum of the output gradient: `broadcast_channels` makes it a
  # `channel_stats.channel_sum` (Keras's ResNet-50 has conv biases; XLA's own sums of them took ~600 ms a step).
  return y if bias is None else y + channel_stats.broadcast_channels(bias, y.shape)


def _conv_transpose_plan(module: nn.ConvTranspose, inputs: jax.Array) -> Optional[tuple[Any, tuple[int, ...], Any]]:
  """(form, strides, explicit padding) for a strided 2-D `nn.ConvTranspose` that `conv_transpose_vjp` computes,
  else None (kernel dilation, transposed or masked kernels, circular padding, precision settings and stride 1 stay
  Flax's)."""
  kernel_size = _pair(module.kernel_size)
  strides = _pair(module.strides)
  if (type(module) is not nn.ConvTranspose or inputs.ndim != 4 or len(kernel_size) != 2 or strides == (1, 1)
      or _pair(module.kernel_dilation) != (1, 1) or module.transpose_kernel or module.mask is not None
      or module.precision is not None or getattr(module, "preferred_element_type", None) is not None):
    return None
  padding = linear.canonicalize_padding(module.padding, 2)
  if isinstance(padding, str) and padding not in ("SAME", "VALID"):
    return None
  padding = conv_transpose_vjp.conv_transpose_padding(inputs.shape, (*kernel_size, inputs.shape[-1],
                                                                     module.features), strides, padding)
  return None if padding is None else (_transposed_form, strides, padding)


def _conv_interceptor(next_fun, args, kwargs, context):
  module = context.module
  if (context.method_name != "__call__" or not isinstance(module, _CONV_TYPES) or not args
      or not module.has_variable("params", "kernel")):  # at init the kernel does not exist yet
    return next_fun(*args, **kwargs)
  planner = _conv_transpose_plan if isinstance(module, nn.ConvTranspose) else _conv_plan
  plan = planner(module, args[0]) if not kwargs and len(args) == 1 else None
  if plan is not None and plan[0] is _few_channel_form:
    # No barrier on a 1-channel input (an image): its conditional's gradient would keep the unused image
    # gradient alive, and the input is a plain buffer already.
    return _rewritten_conv(module, args[0], *plan)
  inputs = materialize(args[0], module.get_variable("params", "kernel"))
  if plan is None:
    return next_fun(inputs, *args[1:], **kwargs)
  return _rewritten_conv(module, inputs, *plan)


def _batch_norm_interceptor(next_fun, args, kwargs, context):
  """Training-mode `nn.BatchNorm` with its statistics from `channel_stats` (fast reductions, same values)."""
  module = context.module
  if context.method_name != "__call__" or type(module) is not nn.BatchNorm or not args or len(args) > 2:
    return next_fun(*args, **kwargs)
  x = args[0]
  override = args[1] if len(args) == 2 else kwargs.get("use_running_average")
  use_running_average = nn.merge_param("use_running_average", module.use_running_average, override)
  if (use_running_average or module.is_initializing() or kwargs.get("mask") is not None
      or module.axis not in (-1, x.ndim - 1) or module.axis_name is not None or not module.use_fast_variance
      or not module.has_variable("batch_stats", "mean")):
    return next_fun(*args, **kwargs)
  features = x.shape[-1]
  scale = module.get_variable("params", "scale") if module.use_scale else jnp.ones((features,), jnp.float32)
  bias = module.get_variable("params", "bias") if module.use_bias else jnp.zeros((features,), jnp.float32)
  params = [p for p, used in ((scale, module.use_scale), (bias, module.use_bias)) if used]
  dtype = module.dtype or jnp.result_type(x, *params)
  y, mean, var = channel_stats.batch_norm_train(x, scale, bias, module.epsilon, dtype)
  momentum = module.momentum
  module.put_variable("batch_stats", "mean", momentum * module.get_variable("batch_stats", "mean")
                      + (1 - momentum) * mean)
  module.put_variable("batch_stats", "var", momentum * module.get_variable("batch_stats", "var")
                      + (1 - momentum) * var)
  return y


@contextlib.contextmanager
def train_step_rewrites(enabled: bool = True) -> Iterator[None]:
  """While tracing inside this context, Flax convolutions and batch norms take the CPU-friendly forms.

  * every `nn.Conv`/`nn.ConvTranspose` reads a materialized input (`materialize`);
  * plain 2-D `nn.Conv`s take a `layers.conv_vjp` form where one is faster (full-window, 1-channel, strided
    and few-channel convs; see `_conv_plan`), and their biases' gradients go through `channel_stats`;
  * every training-mode `nn.BatchNorm` computes its statistics and their gradients with
    `layers.channel_stats` (the same values up to float32 rounding).

  Use it around the traced body of a train step; the forward-only eval step gains nothing from it.
  """
  if not enabled:
    yield
    return
  with nn.intercept_methods(_conv_interceptor), nn.intercept_methods(_batch_norm_interceptor):
    yield


def jit_step(fun: Any, tuned: bool = True, **jit_kwargs: Any) -> Any:
  """`jax.jit(fun, **jit_kwargs)` with the CPU compiler options when `tuned` and applicable."""
  options = compiler_options(tuned)
  if options:
    jit_kwargs["compiler_options"] = options
  return jax.jit(fun, **jit_kwargs)


def jit_train_step(fun: Any, tuned: bool = True, **jit_kwargs: Any) -> Any:
  """`fun`, a train step, traced under `train_step_rewrites` and jitted by `jit_step` (both when `tuned` applies).

  The loop's train step (`train_lib.setup.compile_train_step`) and the bench's steps compile through this.
  """
  enabled = tuning_enabled(tuned)

  @functools.wraps(fun)
  def traced(*args: Any, **kwargs: Any) -> Any:
    with train_step_rewrites(enabled):
      return fun(*args, **kwargs)

  return jit_step(traced, tuned, **jit_kwargs)
