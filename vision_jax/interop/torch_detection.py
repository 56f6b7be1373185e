"""Import torchvision's `fasterrcnn_resnet50_fpn` / `maskrcnn_resnet50_fpn` state dicts (or those of any
`FasterRCNN`/`MaskRCNN` with a ResNet-bottleneck `BackboneWithFPN` and the standard heads) into `RCNN` variables.

Entries are paired by NAME (the layouts match module for module), every pairing checked by shape:
  backbone.body.conv1 / bn1 / layerS.B.{conv,bn}{1,2,3} / layerS.B.downsample.{0,1} -> body/...;
  backbone.fpn.inner_blocks.i.0 / layer_blocks.i.0 -> fpn/inner_i, fpn/layer_i;
  rpn.head.conv.0.0 / cls_logits / bbox_pred -> rpn_head/...;
  roi_heads.box_head.fc6 / fc7, roi_heads.box_predictor.cls_score / bbox_pred -> box_head, box_predictor;
  roi_heads.mask_head.i.0 (or the older mask_fcn{i+1}) -> mask_head/conv_i;
  roi_heads.mask_predictor.conv5_mask / mask_fcn_logits -> mask_predictor/....
Conv kernels go from [out, in, kh, kw] to [kh, kw, in, out], the transposed conv from [in, out, 2, 2] to
[2, 2, in, out], and fc6's input is reordered from torch's (C, h, w) flatten to our (h, w, C).
Batch norms import as batch norm (weight/bias -> params, running stats -> batch_stats) or, for
`norm="frozen"`, all four into batch_stats.

Example:
  >>> model = vision_jax.models.get("maskrcnn_resnet50_fpn")  # doctest: +SKIP
  >>> variables = load_rcnn(model, "maskrcnn_resnet50_fpn.pth")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, Union

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import CheckpointError
from vision_jax.interop.common import assemble, flatten_conv_to_dense
from vision_jax.interop.torch import _group, _to_numpy

_RULES = [
    (r"backbone\.body\.(conv1|bn1)", r"body/\1"),
    (r"backbone\.body\.layer(\d+)\.(\d+)\.(conv\d|bn\d)", r"body/layer\1_\2/\3"),
    (r"backbone\.body\.layer(\d+)\.(\d+)\.downsample\.0", r"body/layer\1_\2/downsample_conv"),
    (r"backbone\.body\.layer(\d+)\.(\d+)\.downsample\.1", r"body/layer\1_\2/downsample_bn"),
    (r"backbone\.fpn\.inner_blocks\.(\d+)(?:\.0)?", r"fpn/inner_\1"),
    (r"backbone\.fpn\.layer_blocks\.(\d+)(?:\.0)?", r"fpn/layer_\1"),
    (r"rpn\.head\.conv(?:\.0\.0)?", r"rpn_head/conv"),
    (r"rpn\.head\.(cls_logits|bbox_pred)", r"rpn_head/\1"),
    (r"roi_heads\.box_head\.(fc6|fc7)", r"box_head/\1"),
    (r"roi_heads\.box_predictor\.(cls_score|bbox_pred)", r"box_predictor/\1"),
    (r"roi_heads\.mask_head\.(\d+)\.0", r"mask_head/conv_\1"),
    (r"roi_heads\.mask_predictor\.(conv5_mask|mask_fcn_logits)", r"mask_predictor/\1"),
]


def our_path(prefix: str) -> tuple[str, ...] | None:
  """Our module path for a torchvision module prefix (e.g. 'backbone.fpn.inner_blocks.0.0'), or None."""
  old = re.fullmatch(r"roi_heads\.mask_head\.mask_fcn(\d+)", prefix)
  if old:
    return ("mask_head", f"conv_{int(old.group(1)) - 1}")
  for pattern, replacement in _RULES:
    if re.fullmatch(pattern, prefix):
      return tuple(re.sub(pattern, replacement, prefix).split("/"))
  return None


def _shapes(model, image_size: int) -> dict[str, Any]:
  images = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
  return dict(jax.eval_shape(lambda: model.init(jax.random.key(0), images)))


def load_rcnn(model, state_dict_or_path: Union[str, os.PathLike, Mapping[str, Any]],
              image_size: int = 64) -> dict[str, Any]:
  """Converts a torchvision Faster/Mask R-CNN state dict into variables of `model` (an `RCNN`).

  Args:
    model: the `RCNN` to fill (its num_classes, widths, norm and `mask` must match the checkpoint).
    state_dict_or_path: a state dict (torch tensors or numpy arrays), or a `.pt`/`.pth`/`.npz` file.
    image_size: square size used to trace shapes (any multiple of 64 works).

  Returns:
    {"params": ..., "batch_stats": ...} for `model.apply`.

  Raises:
    CheckpointError: missing, unexpected or mis-shaped entries (all listed in one message).
  """
  state = _to_numpy(state_dict_or_path)
  shapes = _shapes(model, image_size)
  fc6 = shapes["params"]["box_head"]["fc6"]["kernel"].shape[0]
  roi = model.box_roi_size
  assigned: dict[tuple[str, ...], np.ndarray] = {}
  unexpected: list[str] = []
  for prefix, entries in _group(state):
    path = our_path(prefix)
    if path is None:
      unexpected += [f"{prefix}.{leaf}" for leaf in entries]
      continue
    if "running_mean" in entries:
      frozen = getattr(model, "norm", "frozen") == "frozen"
      pairs = (("scale", "weight"), ("bias", "bias"), ("mean", "running_mean"), ("var", "running_var"))
      for ours, theirs in pairs:
        collection = "batch_stats" if frozen or ours in ("mean", "var") else "params"
        assigned[(collection, *path, ours)] = entries[theirs]
      continue
    weight = entries["weight"]
    if path[-1] == "conv5_mask":
      kernel = weight.transpose(2, 3, 0, 1)
    elif weight.ndim == 4:
      kernel = weight.transpose(2, 3, 1, 0)
    else:
      kernel = weight.T
      if path[-1] == "fc6" and kernel.shape[0] == fc6:
        kernel = flatten_conv_to_dense(kernel, (roi, roi, fc6 // (roi * roi)))
    assigned[("params", *path, "kernel")] = kernel
    if "bias" in entries:
      assigned[("params", *path, "bias")] = entries["bias"]
  if not assigned:
    raise CheckpointError("the state dict has no torchvision Faster/Mask R-CNN entries (backbone.body..., "
                          "rpn.head..., roi_heads...): is it a detection model's state dict?")
  return assemble(shapes, assigned, unexpected, "torchvision detection state dict")
