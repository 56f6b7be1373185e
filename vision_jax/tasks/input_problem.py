"""Input-optimisation problems: methods that optimise an IMAGE rather than network weights.

Neural style transfer, DeepDream and activation maximisation all follow one pattern: start from an image (noise
or a photo), compute a differentiable loss of it (usually through a frozen feature network), and step the image
with an optimizer. An `InputProblem` says what is optimised and how it is scored; `vision_jax.train_lib.input_opt`
runs it with the loop's parts (config, optimizer and schedule, progress, metrics.csv + TensorBoard, orbax
checkpoints with keep-k, resume, SIGTERM/Ctrl-C stops, summary.json, curves.png).

The protocol:
  init_image(rng)                 the starting point: [1, H, W, C] float32, or any pytree of float arrays
  constants()                     frozen inputs of the loss (a feature network's variables, target images, Gram
                                  matrices). The runner passes them to the jitted step as an ARGUMENT, so they are
                                  neither baked into the compiled program as constants nor written to checkpoints:
                                  a resumed run rebuilds them with `constants()`
  loss(image, constants, rng)     (scalar loss, {metric: scalar}), differentiated with respect to `image`
  project(image)                  applied after every step (e.g. clip to the valid pixel range); identity here
  display(image)                  the image as [H, W, C] floats in [0, 1] for PNGs
  render(image, workdir, step)    writes PNGs (image.png, progress/step_<step>.png, progress.png) -> paths
  identity()                      what must match between a checkpoint and the run resuming it (beyond shapes)
  model_name, curve_metrics       the frozen network's name for the checkpoint identity; curves.png's metrics

Problems are registered by name (`@register_problem("style_transfer")`) and chosen by `config.task`;
`is_input_problem(config.task)` tells the command line to call `input_opt.run` instead of the training loop.
Problem-specific settings live in `config.problem` (a ConfigDict). The demonstration problem `match_image`
(below) optimises noise into a fixed MNIST digit under MSE plus total variation: its solution is known.
"""

from __future__ import annotations

import abc
import glob
import importlib
import os
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax.errors import ConfigError

Metrics = dict[str, jax.Array]


class InputProblem(abc.ABC):
  """One input-optimisation problem (see the module docstring).

  Class attributes:
    model_name: the frozen network the loss looks through ("" when none); part of the checkpoint identity.
    curve_metrics: metrics drawn in curves.png (None: every logged scalar).

  Args:
    config: the experiment config; problem settings are in `config.problem`.
  """

  model_name: ClassVar[str] = ""
  curve_metrics: ClassVar[tuple[str, ...] | None] = None

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config

  @abc.abstractmethod
  def init_image(self, rng: jax.Array) -> Any:
    """The starting image: [1, H, W, C] float32 (or a pytree of float arrays)."""

  def constants(self) -> Any:
    """Frozen inputs of `loss` (a pytree of arrays); none by default."""
    return {}

  @abc.abstractmethod
  def loss(self, image: Any, constants: Any, rng: jax.Array) -> tuple[jax.Array, Metrics]:
    """(scalar loss to minimise, {metric: scalar}) of `image`; traced inside the jitted step.

    Args:
      image: the optimised pytree, as `init_image` made it.
      constants: `constants()`, placed on the devices.
      rng: this step's key (`fold_in(run key, step)`), for random jitter or augmentations.
    """

  def project(self, image: Any) -> Any:
    """Maps `image` back to the feasible set after each update (traced); the identity by default."""
    return image

  def identity(self) -> dict[str, Any]:
    """Settings that must match between a checkpoint and the run resuming it, beyond the image shapes."""
    return {}

  def display(self, image: Any) -> np.ndarray:
    """The image as [H, W, C] floats in [0, 1]: by default the first leaf's first example, clipped."""
    first = np.asarray(jax.tree.leaves(image)[0], np.float32)
    return np.clip(first[0] if first.ndim == 4 else first, 0.0, 1.0)

  def render(self, image: Any, workdir: str, step: int) -> list[str]:
    """Writes image.png (the latest image), progress/step_<step>.png and progress.png (up to 8 saved steps side
    by side, oldest left) into `workdir`.

    Args:
      image: the optimised pytree as host arrays.
      workdir: the run directory.
      step: optimisation steps taken so far.

    Returns:
      Paths written.
    """
    pixels = self.display(image)
    current = os.path.join(workdir, "image.png")
    frame = os.path.join(workdir, "progress", f"step_{step:06d}.png")
    save_png(pixels, current)
    save_png(pixels, frame)
    sheet = os.path.join(workdir, "progress.png")
    write_progress_sheet(sorted(glob.glob(os.path.join(workdir, "progress", "step_*.png"))), sheet)
    return [current, frame, sheet]


# --- PNGs --------------------------------------------------------------------------------------------------------
def to_uint8(pixels: np.ndarray) -> np.ndarray:
  """[H, W, C] floats in [0, 1] -> uint8 (rounded, clipped)."""
  return np.round(np.clip(np.asarray(pixels, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def save_png(pixels: np.ndarray, path: str, min_side: int = 112) -> None:
  """Writes [H, W, C] floats in [0, 1] (C = 1 or 3) as a PNG, enlarged by an integer factor (nearest neighbour)
  until its shorter side is at least `min_side`, so that small images stay visible."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  image = to_uint8(pixels)
  factor = max(1, -(-min_side // min(image.shape[:2])))
  image = image.repeat(factor, axis=0).repeat(factor, axis=1)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def write_progress_sheet(frames: list[str], path: str, max_frames: int = 8, gap: int = 4) -> None:
  """Places up to `max_frames` evenly spaced PNGs of `frames` side by side (white gaps) in one PNG."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if not frames:
    return
  count = min(max_frames, len(frames))
  picks = [frames[round(k * (len(frames) - 1) / max(count - 1, 1))] for k in range(count)]
  images = [Image.open(p).convert("RGB") for p in picks]
  height = max(im.height for im in images)
  sheet = Image.new("RGB", (sum(im.width for im in images) + gap * (len(images) - 1), height), "white")
  x = 0
  for im in images:
    sheet.paste(im, (x, 0))
    x += im.width + gap
  sheet.save(path)


# --- Losses shared by problems -----------------------------------------------------------------------------------
def total_variation(images: jax.Array) -> jax.Array:
  """Anisotropic total variation: sum of |differences| of vertically and horizontally neighbouring pixels.

  Args:
    images: [N, H, W, C].

  Returns:
    [N] one value per image (as `tf.image.total_variation` defines it).
  """
  down = jnp.abs(images[:, 1:, :, :] - images[:, :-1, :, :]).sum(axis=(1, 2, 3))
  right = jnp.abs(images[:, :, 1:, :] - images[:, :, :-1, :]).sum(axis=(1, 2, 3))
  return down + right


# --- Registry ----------------------------------------------------------------------------------------------------
_PROBLEMS: dict[str, Callable[[ml_collections.ConfigDict], InputProblem]] = {}


def register_problem(name: str):
  """Class decorator registering an input problem (a class or a factory `config -> InputProblem`) under
  `config.task = name`."""

  def decorator(factory):
    if _PROBLEMS.setdefault(name, factory) is not factory:
      raise ValueError(f"input problem {name!r} is registered twice")
    return factory

  return decorator


# Modules whose problems register on import, loaded on first lookup (they import this module, so importing them
# here at the top would be a cycle).
_BUILTIN_MODULES = ("vision_jax.interpret.dream", "vision_jax.interpret.style", "vision_jax.interpret.views")


def _load_builtins() -> None:
  for module in _BUILTIN_MODULES:
    importlib.import_module(module)


def is_input_problem(name: str) -> bool:
  """True when `name` (a `config.task`) is a registered input-optimisation problem."""
  _load_builtins()
  return name in _PROBLEMS


def problem_names() -> list[str]:
  """Sorted names of the registered input problems."""
  _load_builtins()
  return sorted(_PROBLEMS)


def get_problem(config: ml_collections.ConfigDict) -> InputProblem:
  """Builds the input problem named by `config.task`."""
  _load_builtins()
  if config.task not in _PROBLEMS:
    raise ConfigError(f"unknown input problem {config.task!r}; known: {', '.join(problem_names())}")
  return _PROBLEMS[config.task](config)


# --- The demonstration problem -----------------------------------------------------------------------------------
@register_problem("match_image")
class MatchImage(InputProblem):
  """Optimises uniform noise into one embedded MNIST digit: loss = MSE + tv_weight * total variation per pixel.

  Settings (`config.problem`): digit (index into the 10,000 embedded digits), tv_weight. Its minimiser is the
  digit itself up to a slight smoothing by the TV term (per pixel, |image - target| <= 2 * tv_weight at the
  optimum), so a run must end with an MSE orders of magnitude below the noise's.
  """

  curve_metrics = ("loss", "mse", "tv")

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__(config)
    from vision_jax.data import embedded_mnist  # pylint: disable=import-outside-toplevel
    images, _ = embedded_mnist.load_arrays()
    digit = int(config.problem.digit)
    if not 0 <= digit < len(images):
      raise ConfigError(f"problem.digit={digit} is out of range; use 0..{len(images) - 1}")
    self.target = (images[digit].astype(np.float32) / 255.0)[None, :, :, None]  # [1, 28, 28, 1]
    self.tv_weight = float(config.problem.tv_weight)

  def init_image(self, rng: jax.Array) -> jax.Array:
    return jax.random.uniform(rng, self.target.shape, jnp.float32)

  def constants(self) -> dict[str, np.ndarray]:
    return {"target": self.target}

  def loss(self, image, constants, rng):
    del rng
    mse = jnp.mean(jnp.square(image - constants["target"]))
    tv = total_variation(image).sum() / image.size
    return mse + self.tv_weight * tv, {"mse": mse, "tv": tv}

  def project(self, image):
    return jnp.clip(image, 0.0, 1.0)

  def identity(self) -> dict[str, Any]:
    return {"digit": int(self.config.problem.digit)}

  def render(self, image, workdir, step):
    target = os.path.join(workdir, "target.png")
    if not os.path.exists(target):
      save_png(self.target[0], target)
    return super().render(image, workdir, step) + [target]
