"""Import Keras 3 `keras.applications` weights (`.weights.h5`, or a `.keras` archive) into our Flax models.

Supported (Keras application -> our registry name): VGG16/19 -> keras_vgg16/19, ResNet50/101/152 ->
keras_resnet50/101/152, InceptionV3 -> keras_inception_v3, Xception -> xception, MobileNet -> mobilenet_v1,
MobileNetV2 -> keras_mobilenet_v2, EfficientNetB0..B7 -> keras_efficientnet_b0..b7, DenseNet121/169/201 ->
keras_densenet121/169/201. Build the Keras model with `classifier_activation=None` (or take the logits before
its softmax) to compare logits. Only h5py is needed, not Keras.

A Keras 3 weights file stores each layer under `layers/<snake_case class name>[_<k>]/vars/<i>`, where k counts
the layers of that class in the model's layer order; we pair them, class by class, with our layers in call
order, and check every shape.

Example:
  >>> variables = vision_jax.interop.keras.load("keras_resnet50", "resnet50.weights.h5")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from typing import Any, Optional, Sequence

import numpy as np

from vision_jax import models
from vision_jax.errors import CheckpointError
from vision_jax.interop.common import assemble, leaf_layers

SUPPORTED = (["keras_vgg16", "keras_vgg19", "keras_resnet50", "keras_resnet101", "keras_resnet152",
              "keras_inception_v3", "xception", "mobilenet_v1", "keras_mobilenet_v2"] +
             [f"keras_efficientnet_b{i}" for i in range(8)] + [f"keras_densenet{d}" for d in (121, 169, 201)])
_INPUT = {"keras_inception_v3": 299, "xception": 299}


def read_weights(path: str) -> dict[str, list[list[np.ndarray]]]:
  """Reads a Keras 3 weights file into {layer class: [vars of each layer, in model layer order]}."""
  import h5py  # pylint: disable=import-outside-toplevel

  if not os.path.exists(path):
    raise CheckpointError(f"no such Keras weights file: {path}")
  if path.endswith(".keras"):
    with zipfile.ZipFile(path) as z:
      source = io.BytesIO(z.read("model.weights.h5"))
  else:
    source = path
  by_class: dict[str, list[tuple[int, str, list[np.ndarray]]]] = {}
  with h5py.File(source, "r") as f:
    if "layers" not in f:
      raise CheckpointError(f"{path} is not a Keras 3 weights file (no 'layers' group); re-save it with Keras 3")
    for name, group in f["layers"].items():
      if "vars" not in group or not len(group["vars"]):
        continue
      m = re.fullmatch(r"(.*?)(?:_(\d+))?", name)
      values = [np.asarray(group["vars"][str(i)]) for i in range(len(group["vars"]))]
      by_class.setdefault(m.group(1), []).append((int(m.group(2) or 0), name, values))
  return {c: [(n, v) for _, n, v in sorted(items)] for c, items in by_class.items()}


def _shortcut_before_last_conv(layers: list) -> list:
  """Keras ResNet lists a block's projection shortcut between its second and third conv; so do we."""
  out: list = []
  for layer in layers:
    if len(layer.path) > 1 and layer.path[1] == "downsample":
      first_conv3 = next(i for i, l in enumerate(out) if l.path[:2] == (layer.path[0], "conv3"))
      n_moved = sum(1 for l in out[first_conv3:] if l.path[1] == "downsample")
      out.insert(first_conv3 + n_moved, layer)
    else:
      out.append(layer)
  return out


# Keras orders a Functional model's layers by their distance (in layers) to the output, farthest first, ties in
# creation order. Inside an Inception v3 module that is this distance of each conv-bn-act to the module's
# concatenation: 3 layers per remaining conv-bn-act, +1 for the inner concatenation of the split branches.
_INCEPTION_DISTANCE = {
    "branch1x1": 3, "branch_pool": 3, "branch5x5_1": 6, "branch5x5_2": 3, "branch3x3dbl_1": 9,
    "branch3x3dbl_2": 6, "branch3x3dbl_3": 3, "branch3x3": 3, "branch7x7_1": 9, "branch7x7_2": 6, "branch7x7_3": 3,
    "branch7x7dbl_1": 15, "branch7x7dbl_2": 12, "branch7x7dbl_3": 9, "branch7x7dbl_4": 6, "branch7x7dbl_5": 3,
    "branch3x3_1": 6, "branch3x3_2": 3, "branch7x7x3_1": 12, "branch7x7x3_2": 9, "branch7x7x3_3": 6,
    "branch7x7x3_4": 3}
_INCEPTION_E_DISTANCE = {"branch1x1": 3, "branch_pool": 3, "branch3x3_1": 7, "branch3x3_2a": 4, "branch3x3_2b": 4,
                         "branch3x3dbl_1": 10, "branch3x3dbl_2": 7, "branch3x3dbl_3a": 4, "branch3x3dbl_3b": 4}


def _keras_inception_order(layers: list) -> list:
  """Reorders the layers of each Inception v3 module into Keras' layer order."""
  def key(item):
    index, layer = item
    if not layer.path[0].startswith("Mixed"):
      return (index, 0, 0)
    block_start = next(i for i, l in enumerate(layers) if l.path[0] == layer.path[0])
    table = _INCEPTION_E_DISTANCE if layer.path[0] in ("Mixed_7b", "Mixed_7c") else _INCEPTION_DISTANCE
    return (block_start, -table[layer.path[1]], index)
  return [l for _, l in sorted(enumerate(layers), key=key)]


def load(model_name: str, path: str, num_classes: Optional[int] = None,
         input_shape: Optional[Sequence[int]] = None, **model_kwargs: Any) -> dict[str, Any]:
  """Converts a Keras 3 weights file into Flax variables for `vision_jax.models.get(model_name)`.

  Args:
    model_name: one of `SUPPORTED`.
    path: a `.weights.h5` file (`model.save_weights`) or a `.keras` archive (`model.save`).
    num_classes: classes of the file's classifier; read from its last dense layer when None.
    input_shape: [H, W, C] used to trace our model (only shapes matter).
    **model_kwargs: further constructor arguments.

  Returns:
    {"params": ..., "batch_stats": ...}.

  Raises:
    CheckpointError: unsupported model, unreadable file, or missing, unexpected or mis-shaped weights.
  """
  if model_name not in SUPPORTED:
    raise CheckpointError(f"no Keras importer for {model_name!r}; supported: {', '.join(SUPPORTED)}")
  weights = read_weights(os.fspath(path))
  if num_classes is None:
    head = (weights.get("dense") or weights.get("conv2d") or [("", [np.zeros((0, 0))])])[-1][1]
    num_classes = int(head[0].shape[-1])
  model = models.get(model_name, num_classes=num_classes, **model_kwargs)
  size = _INPUT.get(model_name, 224)
  if model_name.startswith("keras_vgg") and input_shape is None and weights.get("dense"):
    # No adaptive pool in Keras VGG: the first dense layer fixes the input size (H / 32)^2 * 512 inputs.
    size = 32 * int(round(np.sqrt(weights["dense"][0][1][0].shape[0] / 512)))
  ours, shapes = leaf_layers(model, tuple(input_shape or (size, size, 3)))
  if model_name.startswith("keras_resnet"):
    ours = _shortcut_before_last_conv(ours)
  if model_name == "keras_inception_v3":
    ours = _keras_inception_order(ours)
  queues = {c: list(v) for c, v in weights.items()}
  assigned: dict[tuple[str, ...], np.ndarray] = {}
  mismatched: list[str] = []

  def take(cls: str, for_path: Sequence[str]) -> Optional[list[np.ndarray]]:
    if not queues.get(cls):
      mismatched.append(f"no Keras {cls} layer left for {'/'.join(for_path)}")
      return None
    return queues[cls].pop(0)[1]

  for layer in ours:
    p = layer.path
    if layer.kind == "conv" and p[-1] == "pointwise":
      continue  # filled with its separable conv
    if layer.kind == "depthwise" and p[-1] == "depthwise":
      v = take("separable_conv2d", p)
      if v is not None:
        assigned[("params", *p, "kernel")] = v[0].transpose(0, 1, 3, 2)
        assigned[("params", *p[:-1], "pointwise", "kernel")] = v[1]
        if len(v) > 2:
          assigned[("params", *p[:-1], "pointwise", "bias")] = v[2]
    elif layer.kind in ("conv", "depthwise"):
      v = take("conv2d" if layer.kind == "conv" else "depthwise_conv2d", p)
      if v is not None:
        assigned[("params", *p, "kernel")] = v[0].transpose(0, 1, 3, 2) if layer.kind == "depthwise" else v[0]
        if len(v) > 1:
          assigned[("params", *p, "bias")] = v[1]
    elif layer.kind == "dense":
      v = take("dense" if queues.get("dense") else "conv2d", p)  # MobileNet's classifier is a 1x1 conv
      if v is not None:
        assigned[("params", *p, "kernel")] = v[0].reshape(-1, v[0].shape[-1])
        assigned[("params", *p, "bias")] = v[1]
    elif layer.kind == "bn":
      v = take("batch_normalization", p)
      if v is not None:
        names = (["scale"] if layer.module.use_scale else []) + (["bias"] if layer.module.use_bias else [])
        if len(v) != len(names) + 2:
          mismatched.append(f"{'/'.join(p)}: Keras batch norm has {len(v)} variables, ours {len(names) + 2}")
        else:
          for name, value in zip(names, v):
            assigned[("params", *p, name)] = value
          assigned[("batch_stats", *p, "mean")], assigned[("batch_stats", *p, "var")] = v[-2], v[-1]
    elif layer.kind == "input_norm":
      v = take("normalization", p)
      if v is not None:
        assigned[("batch_stats", *p, "mean")] = v[0].reshape(-1)
        assigned[("batch_stats", *p, "variance")] = v[1].reshape(-1)
  unexpected = [name for items in queues.values() for name, _ in items]
  return assemble(shapes, assigned, unexpected, "Keras weights file", mismatched)
