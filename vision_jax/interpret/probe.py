"""A named layer's activation, and the gradient of a score with respect to it, on any Flax model, without
editing the model.

Every submodule call of a Flax model passes through `flax.linen.intercept_methods`. `probe` runs the model with
an interceptor that, at the layer whose path is `layer` (e.g. "layer4_1", "layer3_0/conv2"; `layer_names`
lists them), returns the layer's output plus a perturbation `delta` and records that output. The derivative of
the score with respect to `delta` at `delta = 0` is the gradient with respect to the layer's output, the value
the PyTorch hooks of pytorch-grad-cam read, while the forward pass is unchanged. A layer called more than once
(a shared module) is probed at its first call.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError

Apply = Callable[[jax.Array], jax.Array]  # images -> logits [N, K]


def _path(module: nn.Module) -> str:
  return "/".join(str(p) for p in module.path)


def layer_names(model: nn.Module, variables: Any, images: jax.Array) -> list[tuple[str, tuple[int, ...]]]:
  """The module calls of `model` whose output is one array, in call order, with their output shapes.

  Args:
    model: an unbound Flax module taking images [N, H, W, C] (its `__call__` in inference mode).
    variables: its variables.
    images: example inputs (only shapes matter).

  Returns:
    [(path, output shape), ...], e.g. [("stem", (1, 64, 64, 16)), ..., ("logits", (1, 10))].
  """
  found: dict[str, tuple[int, ...]] = {}

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    name = _path(context.module)
    if context.method_name == "__call__" and name and hasattr(out, "shape") and name not in found:
      found[name] = tuple(out.shape)
    return out

  def run(x):
    with nn.intercept_methods(record):
      return model.apply(variables, x)

  jax.eval_shape(run, images)
  return list(found.items())


def probe(model: nn.Module, variables: Any, images: jax.Array, layer: str,
          delta: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
  """Runs `model` on `images`, recording the output of `layer` (plus `delta`, when given).

  Args:
    model: an unbound Flax module (inference mode: called as `model.apply(variables, images)`).
    variables: its variables.
    images: [N, H, W, C].
    layer: a module path from `layer_names`.
    delta: added to the layer's output (same shape), or None.

  Returns:
    (model output, the layer's output + delta).

  Raises:
    ConfigError: `layer` is not a module of the model (the message lists some that are).
  """
  seen: dict[str, jax.Array] = {}

  def intercept(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and _path(context.module) == layer and "value" not in seen:
      if delta is not None:
        out = out + delta
      seen["value"] = out
    return out

  with nn.intercept_methods(intercept):
    outputs = model.apply(variables, images)
  if "value" not in seen:
    raise ConfigError(f"layer {layer!r} is not in {type(model).__name__}; pick one of: "
                      f"{', '.join(_some_names(model, variables, images))}")
  return outputs, seen["value"]


def _some_names(model: nn.Module, variables: Any, images: jax.Array) -> list[str]:
  """Up to 12 of the last layer names, those with feature maps [N, h, w, c] when there are any."""
  names = layer_names(model, variables, images)
  return [n for n, shape in names if len(shape) == 4][-12:] or [n for n, _ in names][-12:]


def class_scores(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """The sum over the batch of each example's target logit: logits [N, K], targets [N] -> scalar."""
  return jnp.take_along_axis(logits, targets[:, None].astype(jnp.int32), axis=1).sum()


def activation_and_gradient(model: nn.Module, variables: Any, images: jax.Array, layer: str,
                            targets: jax.Array,
                            score: Callable[[jax.Array, jax.Array], jax.Array] = class_scores
                            ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The output of `layer` and the gradient of each example's target score with respect to it.

  Args:
    model, variables: as in `probe`.
    images: [N, H, W, C].
    layer: a module path (`layer_names`).
    targets: [N] class indices.
    score: (outputs, targets) -> scalar, summed over examples (examples do not interact in inference mode).

  Returns:
    (logits [N, K], activation [N, h, w, c], gradient [N, h, w, c]).
  """
  shape = jax.eval_shape(lambda x: probe(model, variables, x, layer)[1], images)

  def score_of(delta):
    outputs, value = probe(model, variables, images, layer, delta)
    return score(outputs, targets), (outputs, value)

  grads, (logits, value) = jax.grad(score_of, has_aux=True)(jnp.zeros(shape.shape, shape.dtype))
  return logits, value, grads


def layer_activations(model: nn.Module, variables: Any, images: jax.Array,
                      layers: Sequence[str]) -> dict[str, jax.Array]:
  """The outputs of several layers in one forward pass: {layer: [N, h, w, c]}."""
  wanted = set(layers)
  seen: dict[str, jax.Array] = {}

  def intercept(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    name = _path(context.module)
    if context.method_name == "__call__" and name in wanted and name not in seen:
      seen[name] = out
    return out

  with nn.intercept_methods(intercept):
    model.apply(variables, images)
  missing = wanted - set(seen)
  if missing:
    raise ConfigError(f"layers {sorted(missing)} are not in {type(model).__name__}; pick from: "
                      f"{', '.join(_some_names(model, variables, images))}")
  return {name: seen[name] for name in layers}
