"""DeepDream (Mordvintsev et al., 2015) as an input problem (`config.task = "deepdream"`, run by
`vision_jax.train_lib.input_opt`; configs/deepdream.py).

A picture is changed to amplify what chosen layers of a frozen network already see in it: gradient ASCENT on
sum_l weight_l * mean(A_l(x)^2), the layer-weighted activation norms, with normalised gradient steps (each
gradient divided by its mean absolute value; use plain `sgd`), random jitter, and octaves with detail carried
from coarse to fine (`octaves.OctaveProblem`).
"""

from __future__ import annotations

import os
from typing import Any

import jax.numpy as jnp
import ml_collections

from vision_jax.errors import ConfigError
from vision_jax.interpret import octaves, probe
from vision_jax.interpret.style import layer_list, load_picture
from vision_jax.tasks.input_problem import register_problem, save_png


@register_problem("deepdream")
class DeepDream(octaves.OctaveProblem):
  """See the module docstring. Settings (`config.problem`): image (file, "card" or a texture name), size,
  layers (comma-separated module paths), layer_weights (comma-separated floats, one per layer; empty: all 1),
  octaves, octave_scale, jitter, blur, network."""

  curve_metrics = ("loss",)
  normalize_steps = True

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__(config)
    p = config.problem
    self.start = load_picture(p.image, int(p.size), int(p.network.channels), "card")
    self.layers = layer_list(p.layers)
    weights = [float(w) for w in layer_list(p.layer_weights)] or [1.0] * len(self.layers)
    if not self.layers or len(weights) != len(self.layers):
      raise ConfigError(f"problem.layers={p.layers!r} and layer_weights={p.layer_weights!r}: name at least one "
                        "layer and give one weight per layer (or none)")
    self.layer_weights = dict(zip(self.layers, weights))
    self.curve_metrics = ("loss",) + tuple(f"norm_{l}" for l in self.layers)

  def objective(self, variables: Any, view):
    net = self.network
    acts = probe.layer_activations(net.model, variables, net.normalize(view), self.layers)
    norms = {l: jnp.mean(jnp.square(acts[l])) for l in self.layers}
    value = sum(self.layer_weights[l] * norms[l] for l in self.layers)
    return value, {f"norm_{l}": v for l, v in norms.items()}

  def identity(self) -> dict[str, Any]:
    p = self.config.problem
    return {"image": str(p.image), "size": int(p.size), "layers": self.layers, "octaves": self.octaves}

  def render(self, image, workdir, step):
    path = os.path.join(workdir, "start.png")
    if not os.path.exists(path):
      save_png(self.start[0], path)
    return super().render(image, workdir, step) + [path]
