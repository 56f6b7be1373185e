"""What the `gan` task measures and draws besides its steps: the feature extractor of its FID/KID/precision-recall,
the conditional accuracy, and the sample pictures (grid of fixed latents, latent interpolation strips)."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from vision_jax.errors import ConfigError
from vision_jax.evaluation import feature_nets

PICTURES = ("samples.png", "interpolation.png")
INTERPOLATION_ROWS, INTERPOLATION_STEPS = 4, 10


def feature_extractor(name: str, image_shape: tuple[int, ...]) -> Callable[[jax.Array], tuple[jax.Array, jax.Array]]:
  """Images [N, H, W, C] in [-1, 1] -> (features [N, D], class logits [N, K]).

  Args:
    name: a committed feature network (`feature_nets.DATASETS`, needs 28x28x1 images), or "pixels": 7x7
      average-pooled pixels (a crude stand-in for datasets without a feature network; logits are zeros).
    image_shape: (H, W, C) of the generated images.
  """
  if name == "pixels":
    def pixels(images):
      n, h, w, c = images.shape
      pooled = jax.image.resize(images.astype(jnp.float32), (n, 7, 7, c), "linear", antialias=True)
      return pooled.reshape((n, -1)), jnp.zeros((n, 1), jnp.float32)
    return pixels
  if tuple(image_shape) != (28, 28, 1):
    raise ConfigError(f"feature network {name!r} takes 28x28x1 images, the generator makes {tuple(image_shape)}: "
                      "set gan.feature_net='pixels'")
  return feature_nets.load(name)


def conditional_accuracy(sums: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """{conditional_accuracy: share of samples the feature classifier puts in the requested class,
  conditional_accuracy_per_class: [K] the same per requested class (NaN for classes never requested)}."""
  requested, correct = np.asarray(sums["requested"], np.float64), np.asarray(sums["correct"], np.float64)
  per_class = np.where(requested > 0, correct / np.maximum(requested, 1), np.nan)
  return {"conditional_accuracy": float(correct.sum() / max(requested.sum(), 1)),
          "conditional_accuracy_per_class": per_class}


def image_grid(images: np.ndarray, cols: int) -> np.ndarray:
  """[N, H, W, C] images in [-1, 1] -> one uint8 image [rows*(H+1)-1, cols*(W+1)-1(, C)], 1 px black gaps."""
  images = np.clip((np.asarray(images, np.float32) + 1) * 127.5, 0, 255).round().astype(np.uint8)
  n, h, w, c = images.shape
  rows = -(-n // cols)
  grid = np.zeros((rows * (h + 1) - 1, cols * (w + 1) - 1, c), np.uint8)
  for i, image in enumerate(images):
    r, col = divmod(i, cols)
    grid[r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = image
  return grid[..., 0] if c == 1 else grid


def fixed_inputs(latent_dim: int, num_classes: int, num_samples: int) -> tuple[np.ndarray, np.ndarray | None, int]:
  """(latents [N, L], labels [N] or None, columns) of samples.png: the same at every evaluation of every run.
  Conditional models: one row per class, the row's columns sharing their latents across rows."""
  rng = np.random.default_rng(1234)
  if num_classes:
    cols = max(1, num_samples // num_classes)
    z = np.tile(rng.standard_normal((cols, latent_dim)), (num_classes, 1))
    return z.astype(np.float32), np.repeat(np.arange(num_classes), cols).astype(np.int32), cols
  cols = int(np.ceil(np.sqrt(num_samples)))
  return rng.standard_normal((num_samples, latent_dim)).astype(np.float32), None, cols


def interpolation_inputs(latent_dim: int, num_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
  """Latents [R * S, L] linearly interpolated between R fixed pairs in S steps (row r of a conditional model keeps
  class r)."""
  rng = np.random.default_rng(4321)
  ends = rng.standard_normal((INTERPOLATION_ROWS, 2, latent_dim))
  t = np.linspace(0, 1, INTERPOLATION_STEPS)[None, :, None]
  z = (1 - t) * ends[:, :1] + t * ends[:, 1:]
  labels = (np.repeat(np.arange(INTERPOLATION_ROWS) % num_classes, INTERPOLATION_STEPS).astype(np.int32)
            if num_classes else None)
  return z.reshape(-1, latent_dim).astype(np.float32), labels


def write_pictures(workdir: str, step: int, sample_fn: Callable[..., jax.Array], state: Any, latent_dim: int,
                   num_classes: int, num_samples: int) -> list[str]:
  """Writes samples.png and interpolation.png (and step-tagged copies under samples/, and TensorBoard images).

  Args:
    sample_fn: (state, z [N, L], labels [N] | None) -> images [N, H, W, C] in [-1, 1].

  Returns:
    Paths written.
  """
  z, labels, cols = fixed_inputs(latent_dim, num_classes, num_samples)
  grid = image_grid(np.asarray(sample_fn(state, jnp.asarray(z), None if labels is None else jnp.asarray(labels))),
                    cols)
  z, labels = interpolation_inputs(latent_dim, num_classes)
  strip = image_grid(np.asarray(sample_fn(state, jnp.asarray(z), None if labels is None else jnp.asarray(labels))),
                     INTERPOLATION_STEPS)
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  paths = []
  for name, picture in zip(PICTURES, (grid, strip)):
    for path in (os.path.join(workdir, name), os.path.join(workdir, "samples", f"{name[:-4]}_{step:07d}.png")):
      Image.fromarray(picture).save(path)
      paths.append(path)
  write_tensorboard_images(workdir, step, {"gan/samples": grid, "gan/interpolation": strip})
  return paths


def write_tensorboard_images(workdir: str, step: int, pictures: Mapping[str, np.ndarray]) -> None:
  """Adds pictures to the run's TensorBoard directory, in a separate event file next to the scalars'. The file is
  closed even when a write fails (a full disk).

  Args:
    workdir: the run's directory.
    step: the training step the pictures are tagged with.
    pictures: TensorBoard tag -> uint8 picture, [H, W, C] or [H, W].
  """
  from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
  with contextlib.closing(SummaryWriter(os.path.join(workdir, "tensorboard"), filename_suffix=".images")) as writer:
    for tag, picture in pictures.items():
      writer.add_image(tag, picture if picture.ndim == 3 else picture[..., None], step, dataformats="HWC")


def picture_paths(workdir: str) -> dict[str, str]:
  """{samples_png, interpolation_png}: the latest pictures' paths."""
  return {f"{name[:-4]}_png": os.path.join(workdir, name) for name in PICTURES}
