"""Keras-like model summaries: one row per layer with its output shape, parameters and multiply-accumulates.

Nothing is compiled or computed: the model is traced with `jax.eval_shape`, and each module call is
recorded through `flax.linen.intercept_methods`. MACs (multiply-accumulate operations, per example) come from
our own formulas:
  * convolution: H_out * W_out * C_out * kh * kw * C_in / groups (a depthwise conv has groups = C_in),
  * dense: prod(output dims) * inputs,
  * transposed convolution: H_in * W_in * C_in * kh * kw * C_out / groups.
Trainable parameters are the `params` collection; every other collection (batch-norm statistics in
`batch_stats`) counts as non-trainable, as in Keras.

Command line (`python -m vision_jax.models.summary ...` works too, with a harmless runpy warning):
  python -m vision_jax.models resnet50 --input_shape=224,224,3 [--num_classes=1000] [--depth=2]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class LayerInfo:
  """One row of a summary.

  Attributes:
    path: module path, e.g. "layer1_0/conv1/conv".
    type: module class name.
    output_shape: shape of the output (the first array of a tuple output), batch dimension included.
    trainable: parameters in `params` under this path.
    non_trainable: values in other collections under this path.
    macs: multiply-accumulates per example, summed over sub-layers.
  """

  path: str
  type: str
  output_shape: tuple[int, ...]
  trainable: int
  non_trainable: int
  macs: int


def _size(tree: Any) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _macs(module: nn.Module, inputs: Sequence[Any], output: Any) -> int:
  """Multiply-accumulates per example of one leaf layer call (0 for layers without a formula)."""
  if not inputs or not hasattr(inputs[0], "shape") or not hasattr(output, "shape"):
    return 0
  x = inputs[0]
  if isinstance(module, nn.ConvTranspose):
    k = math.prod(module.kernel_size)
    return math.prod(x.shape[1:-1]) * x.shape[-1] * k * module.features
  if isinstance(module, nn.Conv):
    k = math.prod(module.kernel_size) if not isinstance(module.kernel_size, int) else module.kernel_size**2
    return math.prod(output.shape[1:]) * k * x.shape[-1] // module.feature_group_count
  if isinstance(module, nn.Dense):
    return math.prod(output.shape[1:]) * x.shape[-1]
  return 0


def layer_table(model: nn.Module, input_shape: Sequence[int], batch_size: int = 1,
                train: bool = False) -> list[LayerInfo]:
  """Traces `model` on zeros of shape [batch_size, *input_shape] and returns one row per module call.

  Args:
    model: an unbound Flax module called as `model(images, train=train)`.
    input_shape: [H, W, C] (or any per-example shape).
    batch_size: leading dimension of the traced input.
    train: trace the training branch.

  Returns:
    Rows in call order; leaf layers carry their own MACs, containers the sum of their leaves'.
  """
  calls: list[tuple[tuple[str, ...], nn.Module, tuple[int, ...], int]] = []

  def interceptor(next_fun: Callable[..., Any], args: Any, kwargs: Any, context: Any) -> Any:
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__":
      first = jax.tree.leaves(out)[0] if jax.tree.leaves(out) else None
      shape = tuple(first.shape) if first is not None else ()
      calls.append((tuple(context.module.scope.path), context.module, shape,
                    _macs(context.module, args, first)))
    return out

  def init() -> Any:
    with nn.intercept_methods(interceptor):
      return model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                        jnp.zeros((batch_size, *input_shape), jnp.float32), train=train)

  variables = jax.eval_shape(init)

  def subtree(collection: Any, path: tuple[str, ...]) -> Any:
    for name in path:
      if not isinstance(collection, dict) or name not in collection:
        return {}
      collection = collection[name]
    return collection

  paths = [c[0] for c in calls]
  rows = []
  for path, module, shape, macs in calls:
    if not path:
      continue  # the model itself: the totals line
    is_leaf = not any(p[:len(path)] == path and len(p) > len(path) for p in paths)
    if not is_leaf:
      macs = sum(m for p, _, _, m in calls if p[:len(path)] == path and len(p) > len(path))
    trainable = _size(subtree(variables.get("params", {}), path))
    non_trainable = sum(_size(subtree(v, path)) for k, v in variables.items() if k != "params")
    rows.append(LayerInfo("/".join(path), type(module).__name__, shape, trainable, non_trainable,
                          macs // batch_size))
  return rows


def count_params(model: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
  """Number of values per variable collection, e.g. {"params": 11689512, "batch_stats": 9600}, via eval_shape."""
  variables = jax.eval_shape(
      lambda: model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                         jnp.zeros((1, *input_shape), jnp.float32), train=False))
  return {k: _size(v) for k, v in variables.items()}


def summary(model: nn.Module, input_shape: Sequence[int], depth: Optional[int] = None,
            print_fn: Optional[Callable[[str], None]] = print) -> str:
  """Returns (and prints with `print_fn`) a Keras-like table: layer path, type, output shape, params, MACs.

  Args:
    model: an unbound Flax module.
    input_shape: per-example input shape, e.g. (224, 224, 3).
    depth: show modules up to this path depth (their rows sum their sub-layers); None shows leaf layers.
    print_fn: where to print the table, or None to only return it.

  Returns:
    The table with trainable / non-trainable parameter totals and total MACs.

  Example:
    >>> from vision_jax import models
    >>> _ = models.summary(models.get("resnet18"), (224, 224, 3))  # doctest: +SKIP
  """
  rows = layer_table(model, input_shape)
  paths = {r.path for r in rows}
  if depth is None:
    shown = [r for r in rows if not any(p.startswith(r.path + "/") for p in paths)]
  else:
    shown = [r for r in rows if r.path.count("/") < depth]
  leaves = [r for r in rows if not any(p.startswith(r.path + "/") for p in paths)]
  counts = count_params(model, input_shape)
  trainable = counts.get("params", 0)
  non_trainable = sum(v for k, v in counts.items() if k != "params")
  width = max([len(r.path) for r in shown] + [20])
  line = "-" * (width + 70)
  out = [f'Model: "{type(model).__name__}"  input {tuple(input_shape)}', line,
         f"{'Layer (path)':<{width}}  {'Type':<20}{'Output shape':<22}{'Params':>11}{'MACs':>15}", line]
  for r in shown:
    out.append(f"{r.path:<{width}}  {r.type[:19]:<20}{str(r.output_shape):<22}{r.trainable + r.non_trainable:>11,}"
               f"{r.macs:>15,}")
  out += [line, f"Total params: {trainable + non_trainable:,}", f"Trainable params: {trainable:,}",
          f"Non-trainable params: {non_trainable:,}", f"Total MACs: {sum(r.macs for r in leaves):,}", line]
  text = "\n".join(out)
  if print_fn is not None:
    print_fn(text)
  return text


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Command-line entry: prints the summary of a registered model; 2 (with one `error:` line) for bad input."""
  from vision_jax import models  # local import: the registry imports every family
  from vision_jax.errors import UserError

  parser = argparse.ArgumentParser(prog="python -m vision_jax.models", description=__doc__.split("\n")[0])
  parser.add_argument("model", help="registered model name, e.g. resnet50")
  parser.add_argument("--input_shape", default="224,224,3", help="H,W,C")
  parser.add_argument("--num_classes", type=int, default=None)
  parser.add_argument("--depth", type=int, default=None, help="module depth to show (default: leaf layers)")
  args = parser.parse_args(argv)
  try:
    shape = tuple(int(v) for v in args.input_shape.split(","))
    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    summary(models.get(args.model, **kwargs), shape, depth=args.depth)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except ValueError as e:
    print(f"error: bad --input_shape {args.input_shape!r} for {args.model}: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
