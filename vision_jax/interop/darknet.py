"""Darknet `.cfg` + `.weights` import: the cfg's network as a Flax module, the weights as its variables.

    model, variables = darknet.load("yolov3.cfg", "yolov3.weights")
    detections = model.apply(variables, images)          # images [N, H, W, C] in [0, 1]

Semantics follow pjreddie's darknet: convs pad `size // 2` when `pad=1`; batch norm with eps 1e-5 on the running
statistics; maxpool windows start at -(padding // 2) (`padding` defaults to size - 1) and see -inf outside the
input; nearest upsampling; route concatenates (optionally one of `groups` channel groups); shortcut adds; reorg is
darknet's `reorg_cpu(..., forward=0)` permutation (not a plain space-to-depth: YOLO v2 weights expect it).

Outputs (`decode=True`), as the `pytorchyolo` package's Darknet model in eval mode: the heads' predictions
concatenated, [N, P, 5 + C] with P = sum over heads of A * H * W in (anchor, row, column) order, each row
(cx, cy, w, h) in input pixels, then objectness and class probabilities. yolo heads: sigmoid offsets, anchors in
pixels, sigmoid objectness and classes. region heads (v2): sigmoid offsets, anchors in grid cells, sigmoid
objectness, softmax classes. With `decode=False` the module returns each head's raw map [N, H, W, A, 5 + C]
(the layout of `vision_jax.losses.detection`'s YOLO losses).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import DataError
from vision_jax.interop.darknet_cfg import LayerSpec, conv_value_count, parse_cfg, read_cfg, read_weights

__all__ = ["DarknetModel", "build", "load", "variables_from_weights", "darknet_reorg", "parse_cfg", "read_weights"]


def _activate(x: jax.Array, name: str) -> jax.Array:
  if name == "leaky":
    return jnp.where(x > 0, x, 0.1 * x)
  if name == "logistic":
    return jax.nn.sigmoid(x)
  if name == "relu":
    return jax.nn.relu(x)
  if name == "mish":
    return x * jnp.tanh(jax.nn.softplus(x))
  if name == "swish":
    return x * jax.nn.sigmoid(x)
  return x


def _max_pool(x: jax.Array, size: int, stride: int, padding: int, out_hw: tuple[int, int]) -> jax.Array:
  """darknet's maxpool: windows start at -padding // 2; positions outside the input are -inf."""
  begin = padding // 2
  pads = [(0, 0)]
  for extent, out in zip(x.shape[1:3], out_hw):
    pads.append((begin, max((out - 1) * stride + size - extent - begin, 0)))
  x = jnp.pad(x, pads + [(0, 0)], constant_values=-jnp.inf)
  x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, size, size, 1), (1, stride, stride, 1), "VALID")
  return x[:, :out_hw[0], :out_hw[1]]


def darknet_reorg(x: jax.Array, stride: int) -> jax.Array:
  """darknet's reorg layer (`reorg_cpu` with forward=0): [N, H, W, C] -> [N, H / s, W / s, C * s * s].

  In NCHW memory it reads the input as [C / s^2, H * s, W * s], gathers Y[k, j, i] = X[k % (C / s^2),
  j * s + (k // (C / s^2)) // s, i * s + (k // (C / s^2)) % s] over the input's (C, H, W), and writes Y's
  memory out as [C * s^2, H / s, W / s].
  """
  n, h, w, c = x.shape
  inner = c // (stride * stride)
  planes = jnp.transpose(x, (0, 3, 1, 2)).reshape(n, inner, h, stride, w, stride)
  gathered = jnp.transpose(planes, (0, 3, 5, 1, 2, 4)).reshape(n, c * stride * stride, h // stride, w // stride)
  return jnp.transpose(gathered, (0, 2, 3, 1))


def _decode_head(raw: jax.Array, anchors: jax.Array, kind: str, image_hw: tuple[int, int]) -> jax.Array:
  """Raw [N, H, W, A, 5 + C] -> [N, A * H * W, 5 + C] (cx, cy, w, h pixels, objectness, class probabilities)."""
  n, g_h, g_w, num_anchors, _ = raw.shape
  cols = jnp.arange(g_w, dtype=jnp.float32)[None, None, :, None]
  rows = jnp.arange(g_h, dtype=jnp.float32)[None, :, None, None]
  step_x, step_y = image_hw[1] / g_w, image_hw[0] / g_h
  cx = (jax.nn.sigmoid(raw[..., 0]) + cols) * step_x
  cy = (jax.nn.sigmoid(raw[..., 1]) + rows) * step_y
  unit_w, unit_h = (step_x, step_y) if kind == "region" else (1.0, 1.0)  # region anchors are in grid cells
  bw = jnp.exp(raw[..., 2]) * anchors[:, 0] * unit_w
  bh = jnp.exp(raw[..., 3]) * anchors[:, 1] * unit_h
  classes = jax.nn.softmax(raw[..., 5:], -1) if kind == "region" else jax.nn.sigmoid(raw[..., 5:])
  out = jnp.concatenate([jnp.stack([cx, cy, bw, bh, jax.nn.sigmoid(raw[..., 4])], -1), classes], -1)
  return jnp.transpose(out, (0, 3, 1, 2, 4)).reshape(n, num_anchors * g_h * g_w, -1)


class DarknetModel(nn.Module):
  """The network of a parsed darknet cfg.

  Attributes:
    layers: the cfg's layers (`parse_cfg`).
    input_shape: (H, W, C) of [net].
    decode: True: the concatenated decoded predictions [N, P, 5 + C]; False: a tuple of raw head maps.
  """

  layers: tuple[LayerSpec, ...]
  input_shape: tuple[int, int, int]
  decode: bool = True

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> Any:
    if tuple(images.shape[1:]) != tuple(self.input_shape):
      raise DataError(f"darknet network expects images [N, {', '.join(map(str, self.input_shape))}], got "
                      f"{list(images.shape)}: resize them to the cfg's width and height")
    x = images.astype(jnp.float32)
    outputs: list[jax.Array] = []
    heads: list[tuple[jax.Array, jax.Array, str]] = []
    for layer in self.layers:
      opt = dict(layer.options)
      if layer.kind == "convolutional":
        p = opt["padding"]
        x = nn.Conv(opt["filters"], (opt["size"],) * 2, opt["stride"], padding=((p, p), (p, p)),
                    use_bias=not opt["batch_normalize"], name=f"conv_{layer.index}")(x)
        if opt["batch_normalize"]:
          x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=f"bn_{layer.index}")(x)
        x = _activate(x, opt["activation"])
      elif layer.kind == "maxpool":
        x = _max_pool(x, opt["size"], opt["stride"], opt["padding"], layer.out_shape[:2])
      elif layer.kind == "route":
        joined = jnp.concatenate([outputs[i] for i in opt["layers"]], -1)
        group = joined.shape[-1] // opt["groups"]
        x = joined[..., group * opt["group_id"]:group * (opt["group_id"] + 1)]
      elif layer.kind == "shortcut":
        x = _activate(x + outputs[opt["from"]], opt["activation"])
      elif layer.kind == "upsample":
        x = jnp.repeat(jnp.repeat(x, opt["stride"], axis=1), opt["stride"], axis=2)
      elif layer.kind == "reorg":
        x = darknet_reorg(x, opt["stride"])
      else:  # yolo / region: channels are anchor-major (a * (5 + C) + k)
        anchors = jnp.asarray(opt["anchors"], jnp.float32)
        n, g_h, g_w, _ = x.shape
        raw = x.reshape(n, g_h, g_w, len(opt["anchors"]), 5 + opt["classes"])
        heads.append((raw, anchors, layer.kind))
      outputs.append(x)
    if not self.decode:
      return tuple(raw for raw, _, _ in heads)
    if not heads:
      raise DataError("the darknet cfg has no [yolo] or [region] layer to decode; build it with decode=False")
    return jnp.concatenate([_decode_head(raw, anchors, kind, self.input_shape[:2]) for raw, anchors, kind in heads],
                           1)


def build(cfg_path: str, decode: bool = True) -> DarknetModel:
  """The network of the darknet cfg file at `cfg_path` (see `DarknetModel`)."""
  net, layers = read_cfg(cfg_path)
  return DarknetModel(layers, (net["height"], net["width"], net["channels"]), decode)


def variables_from_weights(layers: tuple[LayerSpec, ...], values: np.ndarray, source: str = "weights") -> dict:
  """Darknet float values (after the header) -> Flax variables {"params", "batch_stats"} for `DarknetModel`.

  Raises:
    DataError: the values are fewer or more than the cfg's convolutional layers take.
  """
  convs = [layer for layer in layers if layer.kind == "convolutional"]
  needed = sum(conv_value_count(layer) for layer in convs)
  if values.size != needed:
    raise DataError(f"darknet {source} holds {values.size} floats after the header, but the cfg's {len(convs)} "
                    f"convolutional layers need {needed}: the weights belong to another cfg")
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  position = 0

  def take(count: int) -> np.ndarray:
    nonlocal position
    position += count
    return values[position - count:position]

  for layer in convs:
    filters, size, channels = layer.get("filters"), layer.get("size"), layer.get("in_channels")
    if layer.get("batch_normalize"):
      beta, gamma, mean, var = (take(filters) for _ in range(4))
      params[f"bn_{layer.index}"] = {"bias": jnp.asarray(beta), "scale": jnp.asarray(gamma)}
      stats[f"bn_{layer.index}"] = {"mean": jnp.asarray(mean), "var": jnp.asarray(var)}
      conv = {}
    else:
      conv = {"bias": jnp.asarray(take(filters))}
    kernel = take(filters * channels * size * size).reshape(filters, channels, size, size)
    conv["kernel"] = jnp.asarray(kernel.transpose(2, 3, 1, 0))
    params[f"conv_{layer.index}"] = conv
  variables = {"params": params}
  if stats:
    variables["batch_stats"] = stats
  return variables


def load(cfg_path: str, weights_path: str, decode: bool = True) -> tuple[DarknetModel, dict]:
  """Reads a darknet cfg and its `.weights` file.

  Args:
    cfg_path: the network's .cfg.
    weights_path: a .weights file for that cfg (every convolutional layer's values).
    decode: see `DarknetModel`.

  Returns:
    (the Flax module, its variables); `model.apply(variables, images [N, H, W, C])`.
  """
  model = build(cfg_path, decode)
  _, values = read_weights(weights_path)
  return model, variables_from_weights(model.layers, values, repr(weights_path))
