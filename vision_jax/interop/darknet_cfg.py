"""Darknet `.cfg` parsing with shape inference, and `.weights` file reading.

A cfg is a list of `[section]` blocks of `key=value` lines (`#` and `;` start comments); the first block is
`[net]` (or `[network]`) with the input's width, height and channels. Supported layer sections:
convolutional, maxpool, route, shortcut, upsample, reorg, yolo and region — what YOLO v2 / v3 (and their tiny
forms) use. Options that only matter for training darknet (jitter, ignore_thresh, random, ...) are ignored.

A `.weights` file is a header (int32 major, minor, revision; then `seen`, int64 when major * 10 + minor >= 2,
else int32) and float32 values, per convolutional layer in cfg order: with batch_normalize, the BN beta, gamma,
running mean and running variance (each `filters` long), else the conv bias; then the kernel
[filters, in_channels, size, size].
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from vision_jax.errors import DataError

ACTIVATIONS = ("leaky", "linear", "logistic", "relu", "mish", "swish")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """One cfg layer after shape inference.

  Attributes:
    index: the layer's index (0 = the first section after [net]); route/shortcut refer to these.
    kind: the section name.
    options: kind-specific settings as sorted (key, value) pairs (ints, floats, tuples).
    out_shape: (H, W, C) of the layer's output.
  """

  index: int
  kind: str
  options: tuple[tuple[str, Any], ...]
  out_shape: tuple[int, int, int]

  def get(self, key: str) -> Any:
    return dict(self.options)[key]


def _sections(text: str, source: str) -> list[tuple[str, dict[str, str], int]]:
  """cfg text -> [(section name, {key: value}, line number)]."""
  sections: list[tuple[str, dict[str, str], int]] = []
  for number, raw in enumerate(text.splitlines(), 1):
    line = raw.split("#", 1)[0].split(";", 1)[0].strip()
    if not line:
      continue
    if line.startswith("["):
      if not line.endswith("]"):
        raise DataError(f"{source} line {number}: section header {line!r} lacks ']'; write [name]")
      sections.append((line[1:-1].strip(), {}, number))
    elif "=" in line and sections:
      key, value = line.split("=", 1)
      sections[-1][1][key.strip()] = value.strip()
    else:
      raise DataError(f"{source} line {number}: {line!r} is neither '[section]' nor 'key=value' inside a section")
  return sections


class _Options:
  """Typed reads of one section's options with one-line errors naming the section."""

  def __init__(self, values: dict[str, str], where: str):
    self.values, self.where = values, where

  def int(self, key: str, default: int | None = None) -> int:
    if key not in self.values:
      if default is None:
        raise DataError(f"{self.where} lacks '{key}='; add it")
      return default
    try:
      return int(self.values[key])
    except ValueError:
      raise DataError(f"{self.where}: {key}={self.values[key]!r} is not an integer") from None

  def ints(self, key: str, default: str | None = None) -> tuple[int, ...]:
    text = self.values.get(key, default)
    if text is None:
      raise DataError(f"{self.where} lacks '{key}='; add it")
    try:
      return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
      raise DataError(f"{self.where}: {key}={text!r} must be integers separated by ','") from None

  def floats(self, key: str) -> tuple[float, ...]:
    if key not in self.values:
      raise DataError(f"{self.where} lacks '{key}='; add it")
    try:
      return tuple(float(v) for v in self.values[key].split(",") if v.strip())
    except ValueError:
      raise DataError(f"{self.where}: {key}={self.values[key]!r} must be numbers separated by ','") from None


def _relative(index: int, target: int, where: str) -> int:
  """A route/shortcut reference (negative = relative to `index`) -> an absolute earlier layer index."""
  absolute = index + target if target < 0 else target
  if not 0 <= absolute < index:
    raise DataError(f"{where} refers to layer {target}, which is not an earlier layer (0..{index - 1})")
  return absolute


def _anchor_pairs(values: tuple[float, ...], where: str) -> tuple[tuple[float, float], ...]:
  if len(values) % 2:
    raise DataError(f"{where}: anchors= holds {len(values)} numbers; it needs w,h pairs")
  return tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))


def parse_cfg(text: str, source: str = "cfg") -> tuple[dict[str, int], tuple[LayerSpec, ...]]:
  """Parses a darknet cfg and infers every layer's output shape.

  Args:
    text: the cfg file's text.
    source: the file name, for error messages.

  Returns:
    ({"height", "width", "channels"} of [net], the layers in order).

  Raises:
    DataError: a malformed line, a missing or bad option, an unsupported section, or inconsistent shapes.
  """
  sections = _sections(text, source)
  if not sections or sections[0][0] not in ("net", "network"):
    raise DataError(f"{source} must start with a [net] section giving width, height and channels")
  net = _Options(sections[0][1], f"{source} [net]")
  net_shape = {"height": net.int("height"), "width": net.int("width"), "channels": net.int("channels", 3)}
  shape = (net_shape["height"], net_shape["width"], net_shape["channels"])
  layers: list[LayerSpec] = []
  for index, (kind, values, line) in enumerate(sections[1:]):
    where = f"{source} line {line} [{kind}] (layer {index})"
    opts = _Options(values, where)
    h, w, c = shape
    if kind in ("convolutional", "conv"):
      kind = "convolutional"
      size, stride, filters = opts.int("size", 1), opts.int("stride", 1), opts.int("filters", 1)
      padding = size // 2 if opts.int("pad", 0) else opts.int("padding", 0)
      activation = values.get("activation", "logistic")
      if activation not in ACTIVATIONS:
        raise DataError(f"{where}: activation={activation!r} is not supported; use one of {', '.join(ACTIVATIONS)}")
      if opts.int("groups", 1) != 1:
        raise DataError(f"{where}: grouped convolutions (groups=) are not supported")
      options = {"filters": filters, "size": size, "stride": stride, "padding": padding, "in_channels": c,
                 "batch_normalize": opts.int("batch_normalize", 0), "activation": activation}
      shape = ((h + 2 * padding - size) // stride + 1, (w + 2 * padding - size) // stride + 1, filters)
    elif kind in ("maxpool", "max"):
      kind = "maxpool"
      stride = opts.int("stride", 1)
      size = opts.int("size", stride)
      padding = opts.int("padding", size - 1)
      options = {"size": size, "stride": stride, "padding": padding}
      shape = ((h + padding - size) // stride + 1, (w + padding - size) // stride + 1, c)
    elif kind == "route":
      sources = tuple(_relative(index, t, where) for t in opts.ints("layers"))
      groups, group_id = opts.int("groups", 1), opts.int("group_id", 0)
      shapes = [layers[s].out_shape for s in sources]
      if any(s[:2] != shapes[0][:2] for s in shapes):
        raise DataError(f"{where}: layers {list(sources)} have different sizes {[s[:2] for s in shapes]}")
      total = sum(s[2] for s in shapes)
      if total % groups:
        raise DataError(f"{where}: {total} channels do not split into groups={groups}")
      options = {"layers": sources, "groups": groups, "group_id": group_id}
      shape = shapes[0][:2] + (total // groups,)
    elif kind in ("shortcut", "shortcut_layer"):
      kind = "shortcut"
      source_index = _relative(index, opts.int("from"), where)
      if layers[source_index].out_shape != shape:
        raise DataError(f"{where}: from={values['from']} has shape {layers[source_index].out_shape}, the previous "
                        f"layer {shape}; shortcuts need equal shapes")
      activation = values.get("activation", "linear")
      if activation not in ACTIVATIONS:
        raise DataError(f"{where}: activation={activation!r} is not supported; use one of {', '.join(ACTIVATIONS)}")
      options = {"from": source_index, "activation": activation}
    elif kind == "upsample":
      stride = opts.int("stride", 2)
      if stride < 1 or float(values.get("scale", 1)) != 1:
        raise DataError(f"{where}: only upsampling by a positive stride with scale=1 is supported")
      options = {"stride": stride}
      shape = (h * stride, w * stride, c)
    elif kind == "reorg":
      stride = opts.int("stride", 2)
      if opts.int("reverse", 0) or opts.int("flatten", 0) or opts.int("extra", 0):
        raise DataError(f"{where}: reorg with reverse/flatten/extra is not supported")
      if h % stride or w % stride or c % (stride * stride):
        raise DataError(f"{where}: input {shape} is not divisible by stride={stride} (H, W) and stride^2 (C)")
      options = {"stride": stride}
      shape = (h // stride, w // stride, c * stride * stride)
    elif kind in ("yolo", "region"):
      classes = opts.int("classes", 20)
      anchors = _anchor_pairs(opts.floats("anchors"), where)
      num = opts.int("num", len(anchors))
      if len(anchors) < num:
        raise DataError(f"{where}: num={num} but anchors= gives {len(anchors)} pairs")
      if kind == "yolo":
        mask = opts.ints("mask", ",".join(str(i) for i in range(num)))
        if any(not 0 <= m < len(anchors) for m in mask):
          raise DataError(f"{where}: mask={values.get('mask')} indexes past the {len(anchors)} anchors")
        used = tuple(anchors[m] for m in mask)
      else:
        if opts.int("coords", 4) != 4 or opts.int("softmax", 1) != 1:
          raise DataError(f"{where}: only coords=4 with softmax=1 is supported")
        used = anchors[:num]
      if c != len(used) * (5 + classes):
        raise DataError(f"{where}: the previous layer has {c} channels; {len(used)} anchors x (5 + {classes} "
                        f"classes) needs {len(used) * (5 + classes)}: fix its filters=")
      options = {"anchors": used, "classes": classes}
    else:
      raise DataError(f"{where}: section [{kind}] is not supported (convolutional, maxpool, route, shortcut, "
                      "upsample, reorg, yolo, region)")
    if min(shape) <= 0:
      raise DataError(f"{where}: the output shape {shape} is empty; the input is too small for this cfg")
    layers.append(LayerSpec(index, kind, tuple(sorted(options.items())), tuple(int(v) for v in shape)))
  return net_shape, tuple(layers)


def read_cfg(path: str) -> tuple[dict[str, int], tuple[LayerSpec, ...]]:
  """`parse_cfg` of the file at `path`."""
  if not os.path.isfile(path):
    raise DataError(f"darknet cfg {path!r} does not exist; pass the path of a .cfg file")
  with open(path, encoding="utf-8", errors="replace") as f:
    return parse_cfg(f.read(), os.path.basename(path))


def read_weights(path: str) -> tuple[dict[str, int], np.ndarray]:
  """Reads a darknet `.weights` file.

  Returns:
    ({"major", "minor", "revision", "seen"}, the float32 values after the header [V]).
  """
  if not os.path.isfile(path):
    raise DataError(f"darknet weights {path!r} does not exist; pass the path of a .weights file")
  data = np.fromfile(path, dtype=np.uint8)
  if data.size < 16:
    raise DataError(f"darknet weights {path!r} has {data.size} bytes, shorter than the header: not a .weights file")
  major, minor, revision = (int(v) for v in data[:12].view("<i4"))
  wide = major * 10 + minor >= 2
  start = 20 if wide else 16
  if data.size < start:
    raise DataError(f"darknet weights {path!r} ends inside its header: not a .weights file")
  seen = int(data[12:20].view("<i8")[0]) if wide else int(data[12:16].view("<i4")[0])
  if (data.size - start) % 4:
    raise DataError(f"darknet weights {path!r}: {data.size - start} bytes after the header are not whole float32s; "
                    "the file is truncated or not a .weights file")
  values = data[start:].view("<f4").astype(np.float32)
  return {"major": major, "minor": minor, "revision": revision, "seen": seen}, values


def conv_value_count(layer: LayerSpec) -> int:
  """Floats a convolutional layer takes from a .weights file."""
  filters, size, channels = layer.get("filters"), layer.get("size"), layer.get("in_channels")
  return (4 if layer.get("batch_normalize") else 1) * filters + filters * channels * size * size
