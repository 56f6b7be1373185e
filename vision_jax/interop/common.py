"""Shared machinery of the weight importers: our model's layers in call order, and assembling checked Flax
variables from converted arrays with one clear error for missing, unexpected or mis-shaped entries.

Both importers pair the source's layers with ours by ORDER and KIND (conv, depthwise conv, dense, batch
norm, ...): the torchvision and Keras models we import register their layers in the order they run, and our
modules are written to be called in that same order. Every pairing is checked by shape.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from vision_jax.errors import CheckpointError


@dataclasses.dataclass
class Layer:
  """One of our leaf layers that owns variables.

  Attributes:
    path: module path, e.g. ("layer1_0", "conv1", "conv").
    kind: "conv", "depthwise", "dense", "bn" or "input_norm".
    input_shape: shape of the layer's input (batch first).
    module: the bound module (for attributes such as `use_scale`).
  """

  path: tuple[str, ...]
  kind: str
  input_shape: tuple[int, ...]
  module: Any


def leaf_layers(model: nn.Module, input_shape: Sequence[int] | Sequence[Any]) -> tuple[list[Layer], dict[str, Any]]:
  """Traces `model` (no compile) and returns its variable-owning leaf layers in call order and the shapes of
  its variables (nested dict of ShapeDtypeStruct per collection).

  `input_shape` is one input's shape without the batch axis, or a tuple of example input arrays (several inputs).
  """
  if input_shape and all(hasattr(x, "shape") for x in input_shape):
    inputs = tuple(jnp.zeros(x.shape, jnp.float32) for x in input_shape)
  else:
    inputs = (jnp.zeros((1, *input_shape), jnp.float32),)
  layers: list[Layer] = []

  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    if context.method_name == "__call__":
      kind = None
      if isinstance(module, nn.Conv):
        kind = "depthwise" if module.feature_group_count > 1 else "conv"
      elif isinstance(module, nn.Dense):
        kind = "dense"
      elif isinstance(module, nn.BatchNorm):
        kind = "bn"
      elif type(module).__name__ == "KerasInputNorm":
        kind = "input_norm"
      if kind is not None:
        layers.append(Layer(tuple(module.scope.path), kind, tuple(args[0].shape), module))
    return next_fun(*args, **kwargs)

  def init():
    with nn.intercept_methods(interceptor):
      return model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, *inputs, train=False)

  shapes = jax.eval_shape(init)
  return layers, jax.tree.map(lambda s: s, dict(shapes))


def assemble(shapes: Mapping[str, Any], assigned: Mapping[tuple[str, ...], np.ndarray],
             unexpected: Iterable[str] = (), source: str = "checkpoint",
             mismatched: Optional[list[str]] = None) -> dict[str, Any]:
  """Builds Flax variables from `assigned` {(collection, *path): array}, checked against `shapes`.

  Args:
    shapes: our variables' shapes, {collection: nested dict of ShapeDtypeStruct}.
    assigned: converted source arrays keyed by (collection, *module path, variable name).
    unexpected: source entries that found no place in our model.
    source: what to call the source in the error message.
    mismatched: pairing errors already found (e.g. a conv where a dense was expected).

  Returns:
    {collection: nested dict of float32 jnp arrays}.

  Raises:
    CheckpointError (a UserError): one message listing every missing, unexpected and mis-shaped entry.
  """
  flat = {(c, *k): v for c, tree in shapes.items() for k, v in traverse_util.flatten_dict(tree).items()}
  missing = sorted("/".join(k) for k in flat if k not in assigned)
  extra = list(unexpected) + sorted("/".join(k) for k in assigned if k not in flat)
  bad = list(mismatched or [])
  bad += [f"{'/'.join(k)}: {source} {tuple(np.shape(v))} vs ours {tuple(flat[k].shape)}"
          for k, v in assigned.items() if k in flat and tuple(np.shape(v)) != tuple(flat[k].shape)]
  if missing or extra or bad:
    parts = []
    for label, items in (("mis-shaped", bad), ("missing", missing), ("unexpected", extra)):
      if items:
        parts.append(f"{len(items)} {label}: {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}")
    raise CheckpointError(f"the {source} does not match the model: " + "; ".join(parts) +
                          ". Check the model name, num_classes and the source architecture.")
  out: dict[str, Any] = {}
  for key, value in assigned.items():
    out.setdefault(key[0], {})[key[1:]] = jnp.asarray(value, jnp.float32)
  return {c: traverse_util.unflatten_dict(v) for c, v in out.items()}


def flatten_conv_to_dense(kernel: np.ndarray, hwc: Sequence[int]) -> np.ndarray:
  """Reorders a dense kernel [C*H*W, out] that follows a channels-first flatten to our [H*W*C, out]."""
  h, w, c = hwc
  return kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
