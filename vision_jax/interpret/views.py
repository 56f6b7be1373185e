"""Views of what a network learned: its first-layer filters, a layer's activation maps for an input, and images
that maximise a filter or a class logit (activation maximisation, an input problem: `config.task =
"activation_max"`, configs/activation_max.py).

Activation maximisation (Erhan et al., 2009; Simonyan et al., 2013; Yosinski et al., 2015): gradient ascent from
faint noise on the mean activation of one channel of a layer (or one logit), minus l2_weight * mean((x - 0.5)^2)
and tv_weight * total variation per pixel, with jitter, blur and octave scaling (`octaves.OctaveProblem`). Several
channels are optimised at once, one image each, and drawn as a grid.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax.errors import ConfigError
from vision_jax.interpret import octaves, probe
from vision_jax.tasks.input_problem import register_problem, total_variation


def first_conv_kernel(variables: Any) -> np.ndarray:
  """The first convolution kernel [kh, kw, in, out] of a model's params (the first 4-D kernel in tree order of
  creation, which Flax keeps)."""
  found = []

  def visit(tree):
    for key, value in tree.items():
      if isinstance(value, dict) or hasattr(value, "items"):
        visit(value)
      elif key == "kernel" and np.ndim(value) == 4 and not found:
        found.append(np.asarray(value))

  visit(variables["params"])
  if not found:
    raise ConfigError("the model has no 2-D convolution kernel to draw")
  return found[0]


def filter_images(kernel: np.ndarray) -> np.ndarray:
  """First-layer filters as pictures [out, kh, kw, C]: each filter scaled to [0, 1] with 0.5 for zero, by the
  largest |weight| of all filters (so that their strengths compare). C = 3 for RGB inputs, else 1 (the input
  channels averaged)."""
  filters = np.transpose(kernel, (3, 0, 1, 2)).astype(np.float32)
  if filters.shape[-1] not in (1, 3):
    filters = filters.mean(-1, keepdims=True)
  return 0.5 + 0.5 * filters / (np.max(np.abs(filters)) + 1e-12)


def activation_maps(model: nn.Module, variables: Any, images: jax.Array, layer: str,
                    max_channels: int = 64) -> np.ndarray:
  """One layer's channels for the first input, each min-max scaled: [min(c, max_channels), h, w, 1]."""
  act = np.asarray(probe.layer_activations(model, variables, images, [layer])[layer][0], np.float32)
  if act.ndim != 3:
    raise ConfigError(f"layer {layer!r} outputs shape {act.shape}, not feature maps [h, w, c]; pick a conv layer")
  maps = np.transpose(act[..., :max_channels], (2, 0, 1))[..., None]
  low, high = maps.min(axis=(1, 2, 3), keepdims=True), maps.max(axis=(1, 2, 3), keepdims=True)
  return (maps - low) / np.maximum(high - low, 1e-12)


def parse_channels(text: str) -> list[int]:
  """"0-7" -> [0..7]; "1,4,9" -> [1, 4, 9]."""
  out: list[int] = []
  for part in str(text).split(","):
    part = part.strip()
    if "-" in part:
      lo, hi = part.split("-")
      out.extend(range(int(lo), int(hi) + 1))
    elif part:
      out.append(int(part))
  if not out:
    raise ConfigError(f"problem.channels={text!r} names no channel; write e.g. 0-7 or 3,5")
  return out


@register_problem("activation_max")
class ActivationMax(octaves.OctaveProblem):
  """See the module docstring. Settings (`config.problem`): layer (a module path, or "logits" for classes),
  channels ("0-7", "3,5": one image each), size, noise (standard deviation of the start around 0.5), l2_weight,
  tv_weight, octaves, octave_scale, jitter, blur, network."""

  curve_metrics = ("loss", "objective")

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__(config)
    p = config.problem
    self.layer = str(p.layer)
    self.channels = parse_channels(p.channels)
    size, depth = int(p.size), int(p.network.channels)
    shape = (len(self.channels), size, size, depth)
    noise = np.random.default_rng(int(config.seed)).normal(0.0, float(p.noise), shape)
    self.start = np.clip(0.5 + noise, 0.0, 1.0).astype(np.float32)
    self.l2_weight, self.tv_weight = float(p.l2_weight), float(p.tv_weight)

  def objective(self, variables: Any, view):
    net = self.network
    act = probe.layer_activations(net.model, variables, net.normalize(view), [self.layer])[self.layer]
    picks = jnp.asarray(self.channels)
    if max(self.channels) >= act.shape[-1]:
      raise ConfigError(f"problem.channels goes to {max(self.channels)} but {self.layer!r} has {act.shape[-1]} "
                        "channels; pick fewer")
    chosen = jnp.take_along_axis(act.reshape(act.shape[0], -1, act.shape[-1]), picks[:, None, None], axis=2)
    per_image = jnp.mean(chosen, axis=(1, 2))
    return jnp.sum(per_image), {}

  def penalty(self, pixels):
    l2 = jnp.mean(jnp.square(pixels - 0.5))
    tv = total_variation(pixels).sum() / pixels.size
    return self.l2_weight * l2 + self.tv_weight * tv, {"l2": l2, "tv": tv}

  def identity(self) -> dict[str, Any]:
    return {"layer": self.layer, "channels": self.channels, "size": int(self.start.shape[1])}


def layer_choices(names: Sequence[tuple[str, tuple[int, ...]]]) -> list[str]:
  """The names of layers with feature-map outputs [N, h, w, c] (for messages and `--layer` help)."""
  return [n for n, shape in names if len(shape) == 4]
