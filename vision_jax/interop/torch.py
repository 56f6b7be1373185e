"""Import torchvision classifier weights (a state dict, or a file saved with `torch.save(state_dict)`, or an
`.npz` of the state dict's arrays) into our Flax models.

Supported: alexnet, vgg11/13/16/19(_bn), resnet18/34/50/101/152, googlenet (with or without aux heads),
inception_v3 (with or without aux head), mobilenet_v2, efficientnet_b0..b7, densenet121/169/201.
torch is needed only to read a `.pt`/`.pth` file; it is never a dependency of the library.

Example:
  >>> variables = vision_jax.interop.torch.load("resnet18", "resnet18.pth")  # doctest: +SKIP
  >>> logits = vision_jax.models.get("resnet18").apply(variables, images)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from vision_jax import models
from vision_jax.errors import CheckpointError
from vision_jax.interop.common import Layer, assemble, flatten_conv_to_dense, leaf_layers

SUPPORTED = (["alexnet", "googlenet", "inception_v3", "mobilenet_v2"] +
             [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")] +
             [f"resnet{d}" for d in (18, 34, 50, 101, 152)] + [f"efficientnet_b{i}" for i in range(8)] +
             [f"densenet{d}" for d in (121, 169, 201)])
# Dense layers that follow a channels-first flatten in torchvision: (our path suffix, feature map H, W, C).
_FLATTENED = {"alexnet": {("fc1",): (6, 6, 256)}, "vgg": {("fc1",): (7, 7, 512)},
              "googlenet": {("aux1", "fc1"): (4, 4, 128), ("aux2", "fc1"): (4, 4, 128)}}


def _to_numpy(state_dict_or_path: Union[str, os.PathLike, Mapping[str, Any]]) -> dict[str, np.ndarray]:
  if isinstance(state_dict_or_path, (str, os.PathLike)):
    path = os.fspath(state_dict_or_path)
    if not os.path.exists(path):
      raise CheckpointError(f"no such state-dict file: {path}")
    if path.endswith(".npz"):
      with np.load(path) as f:
        return {k: f[k] for k in f.files}
    import torch  # pylint: disable=import-outside-toplevel  (only for reading .pt files)
    state_dict_or_path = torch.load(path, map_location="cpu", weights_only=True)
  return {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
          for k, v in state_dict_or_path.items()}


def _group(state: Mapping[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
  """State-dict entries grouped by module prefix, in state-dict (registration) order."""
  groups: dict[str, dict[str, np.ndarray]] = {}
  for key, value in state.items():
    prefix, _, leaf = key.rpartition(".")
    if leaf != "num_batches_tracked":
      groups.setdefault(prefix, {})[leaf] = value
  return list(groups.items())


def _kind(entries: Mapping[str, np.ndarray]) -> str:
  if "running_mean" in entries:
    return "bn"
  weight = entries.get("weight")
  return {4: "conv", 2: "dense"}.get(getattr(weight, "ndim", 0), "other")


def load(model_name: str, state_dict_or_path: Union[str, os.PathLike, Mapping[str, Any]],
         num_classes: Optional[int] = None, input_shape: Optional[Sequence[int]] = None,
         **model_kwargs: Any) -> dict[str, Any]:
  """Converts a torchvision state dict into Flax variables for `vision_jax.models.get(model_name)`.

  Args:
    model_name: one of `SUPPORTED` (our registry name, which is torchvision's function name).
    state_dict_or_path: a state dict (torch tensors or numpy arrays), or a `.pt`/`.pth`/`.npz` file.
    num_classes: classes of the checkpoint; read from its last linear layer when None.
    input_shape: [H, W, C] used to trace the model (only shapes matter); a default size when None.
    **model_kwargs: further constructor arguments (e.g. `aux_logits=True`, `hidden_units=64`).

  Returns:
    {"params": ..., "batch_stats": ...} for `models.get(model_name, num_classes=..., **model_kwargs)`.

  Raises:
    CheckpointError: for an unsupported model, or missing, unexpected or mis-shaped entries (all listed).
  """
  if model_name not in SUPPORTED:
    raise CheckpointError(f"no torchvision importer for {model_name!r}; supported: {', '.join(SUPPORTED)}")
  state = _to_numpy(state_dict_or_path)
  groups = _group(state)
  if num_classes is None:
    dense = [e["weight"] for _, e in groups if _kind(e) == "dense"]
    if not dense:
      raise CheckpointError(f"the state dict has no linear layer; is it a {model_name} classifier?")
    num_classes = int(dense[-1].shape[0])
  model = models.get(model_name, num_classes=num_classes, **model_kwargs)
  size = 299 if model_name == "inception_v3" else 224
  ours, shapes = leaf_layers(model, tuple(input_shape or (size, size, 3)))
  if model_name == "googlenet":  # torchvision registers the aux heads after inception5b
    aux = [l for l in ours if l.path[0].startswith("aux")]
    ours = [l for l in ours if not l.path[0].startswith("aux")]
    ours = ours[:-1] + aux + ours[-1:]
  flattened = _FLATTENED.get("vgg" if model_name.startswith("vgg") else model_name, {})

  assigned: dict[tuple[str, ...], np.ndarray] = {}
  mismatched: list[str] = []
  n = min(len(groups), len(ours))
  for (prefix, entries), layer in zip(groups[:n], ours[:n]):
    kind = _kind(entries)
    want = "conv" if layer.kind == "depthwise" else layer.kind
    if kind != want:
      mismatched.append(f"{prefix} is a {kind} but {'/'.join(layer.path)} is a {want} (later layers skipped)")
      n = groups.index((prefix, entries))
      break
    _assign(assigned, layer, entries, flattened)
  unexpected = [f"{p}.{leaf}" for p, e in groups[n:] for leaf in e]  # unpaired ours are reported as missing
  return assemble(shapes, assigned, unexpected, "torchvision state dict", mismatched)


def _assign(assigned: dict, layer: Layer, entries: Mapping[str, np.ndarray],
            flattened: Mapping[tuple[str, ...], Sequence[int]]) -> None:
  p = layer.path
  if layer.kind == "bn":
    for ours, theirs in (("scale", "weight"), ("bias", "bias")):
      if theirs in entries:
        assigned[("params", *p, ours)] = entries[theirs]
    for ours, theirs in (("mean", "running_mean"), ("var", "running_var")):
      if theirs in entries:  # an absent one is reported as missing
        assigned[("batch_stats", *p, ours)] = entries[theirs]
    return
  weight = entries["weight"]
  if layer.kind == "dense":
    kernel = weight.T
    hwc = next((v for k, v in flattened.items() if p[-len(k):] == k), None)
    if hwc is not None and kernel.shape[0] == np.prod(hwc):
      kernel = flatten_conv_to_dense(kernel, hwc)
  else:
    kernel = weight.transpose(2, 3, 1, 0)  # [out, in / groups, kh, kw] -> [kh, kw, in / groups, out]
  assigned[("params", *p, "kernel")] = kernel
  if "bias" in entries:
    assigned[("params", *p, "bias")] = entries["bias"]
