"""Octave scheduling for input problems that ascend a network's activations (DeepDream, activation
maximisation).

The optimised pytree is {"pixels": [N, H, W, C] at full size, "clock": steps taken, shape [1, 1, 1, 1] like
every image leaf}. The run's steps are split
evenly over the octaves, smallest first; at octave k the objective sees the pixels, randomly rolled (jitter) and
resized to that octave's size, and its gradient is carried back to full size by the resize's adjoint. The detail
that coarse octaves add therefore stays in the full-size pixels and is what finer octaves start from (the
"detail reinjection" of the DeepDream recipe, without separate base and detail images). `project` advances the
clock, keeps pixels in [0, 1] and applies a light Gaussian blur (`blur` sigma; 0: none) to damp high
frequencies.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax.errors import ConfigError
from vision_jax.interpret import image_ops, network as network_lib
from vision_jax.tasks.input_problem import InputProblem

Objective = Callable[[Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]  # (variables, view) -> (obj, aux)


class OctaveProblem(network_lib.FrozenNetworkMixin, InputProblem):
  """Gradient ascent of `objective` over octaves (see the module docstring).

  Settings read from `config.problem`: octaves, octave_scale, jitter (pixels), blur (sigma, pixels), network.
  Subclasses set `self.start` ([N, H, W, C] starting pixels) and implement `objective` and `penalty`.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__(config)
    p = config.problem
    self.octaves, self.octave_scale = int(p.octaves), float(p.octave_scale)
    if self.octaves < 1 or self.octave_scale < 1.0:
      raise ConfigError(f"problem.octaves={self.octaves}, octave_scale={self.octave_scale}: use octaves >= 1 "
                        "and octave_scale >= 1 (e.g. 3 and 1.4)")
    self.jitter, self.blur = int(p.jitter), float(p.blur)
    self.total_steps = int(config.num_train_steps)
    self.start: np.ndarray = np.zeros((1, 8, 8, 1), np.float32)

  def sizes(self) -> list[tuple[int, int]]:
    """(H, W) of each octave, smallest first."""
    return image_ops.octave_sizes(self.start.shape[1], self.start.shape[2], self.octaves, self.octave_scale)

  def init_image(self, rng: jax.Array) -> dict[str, jax.Array]:
    del rng
    return {"pixels": jnp.asarray(self.start), "clock": jnp.zeros((1, 1, 1, 1), jnp.float32)}

  def constants(self) -> dict[str, Any]:
    return {"variables": self.network.variables}

  def objective(self, variables: Any, view: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(value to maximise, metrics) of pixels `view` [N, h, w, C] in [0, 1] at one octave's size."""
    raise NotImplementedError

  def penalty(self, pixels: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(value to minimise, metrics) of the full-size pixels; none by default."""
    del pixels
    return jnp.zeros(()), {}

  def octave_of(self, clock: jax.Array) -> jax.Array:
    """The octave index of a step: floor(step * octaves / total steps), capped."""
    index = jnp.floor(clock.reshape(()) * self.octaves / max(self.total_steps, 1)).astype(jnp.int32)
    return jnp.clip(index, 0, self.octaves - 1)

  def loss(self, image, constants, rng):
    pixels = image_ops.normalized_gradient(image["pixels"]) if self.normalize_steps else image["pixels"]
    if self.jitter:
      pixels, _ = image_ops.jitter(pixels, rng, self.jitter)

    def branch(size):
      return lambda x: self.objective(constants["variables"], image_ops.resize(x, size))

    value, metrics = jax.lax.switch(self.octave_of(image["clock"]), [branch(s) for s in self.sizes()], pixels)
    penalty, penalty_metrics = self.penalty(image["pixels"])
    return -value + penalty, dict(metrics, objective=value, octave=self.octave_of(image["clock"]).astype(jnp.float32),
                                  **penalty_metrics)

  normalize_steps = False  # DeepDream divides each gradient by its mean |value| (`image_ops.normalized_gradient`)

  def project(self, image):
    pixels = jnp.clip(image_ops.gaussian_blur(image["pixels"], self.blur), 0.0, 1.0)
    return {"pixels": pixels, "clock": image["clock"] + 1}

  def display(self, image) -> np.ndarray:
    pixels = np.asarray(image["pixels"], np.float32)
    if len(pixels) == 1:
      return np.clip(pixels[0], 0.0, 1.0)
    return image_grid(np.clip(pixels, 0.0, 1.0))


def image_grid(images: np.ndarray, columns: int | None = None, gap: int = 2, fill: float = 1.0) -> np.ndarray:
  """Tiles [N, H, W, C] into one [rows * (H + gap) - gap, cols * (W + gap) - gap, C] picture, row by row."""
  n, h, w, c = images.shape
  columns = columns or int(np.ceil(np.sqrt(n)))
  rows = -(-n // columns)
  grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, c), fill, np.float32)
  for k in range(n):
    r, col = divmod(k, columns)
    grid[r * (h + gap):r * (h + gap) + h, col * (w + gap):col * (w + gap) + w] = images[k]
  return grid
