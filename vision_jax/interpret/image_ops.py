"""Image operations of the input-optimisation methods (DeepDream, activation maximisation, style transfer):
reading and generating pictures, octave sizes and resizing, jitter, blur and gradient normalisation.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.data.formats import images as image_files
from vision_jax.errors import DataError


def read_image(path: str, size: int | None, channels: int) -> np.ndarray:
  """An image file as float32 [1, H, W, channels] in [0, 1], its shorter side resized to `size` (None: as is).

  Raises:
    DataError: missing or unreadable file.
  """
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(path):
    raise DataError(f"no image file {path}; pass an existing PNG/JPEG path")
  stored = image_files.read_image(path, channels)  # uint8 [H, W, channels]; 16-bit / float converted faithfully
  image = Image.fromarray(stored[..., 0] if channels == 1 else stored)
  if size:
    scale = size / min(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.BILINEAR)
  pixels = np.asarray(image, np.float32) / 255.0
  return pixels.reshape(1, pixels.shape[0], pixels.shape[1], channels)


def digit_card(index: int = 0, size: int = 64) -> np.ndarray:
  """A generated picture: test example `index` of `digit_localization` (a digit on a warped card),
  [1, size, size, 1] in [0, 1]."""
  from vision_jax.data import digit_localization, embedded_mnist  # pylint: disable=import-outside-toplevel
  images, labels = embedded_mnist.load_arrays()
  pool = np.arange(embedded_mnist.NUM_TRAIN, len(images))[index:index + 1]
  arrays = digit_localization.make_examples(images[pool], labels[pool], digit_localization.SPLIT_SEEDS["test"],
                                            pool, size)
  return arrays["image"][:1].astype(np.float32) / 255.0


def texture(kind: str, size: int, channels: int, seed: int = 0) -> np.ndarray:
  """A generated style picture [1, size, size, channels] in [0, 1].

  Args:
    kind: "waves" (crossed diagonal sine gratings), "checks" (a rotated checkerboard) or "blobs" (smoothed
      noise thresholded into spots).
    size: side in pixels.
    channels: 1 or 3 (colour versions use a different phase per channel).
    seed: for "blobs".
  """
  y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
  layers = []
  for c in range(channels):
    if kind == "waves":
      value = 0.5 + 0.25 * np.sin(2 * math.pi * (7 * x + 3 * y) + c) + 0.25 * np.sin(2 * math.pi * (2 * x - 9 * y))
    elif kind == "checks":
      u, v = (x + y) * 6, (x - y) * 6
      value = ((np.floor(u + 0.3 * c) + np.floor(v)) % 2).astype(np.float32) * 0.8 + 0.1
    elif kind == "blobs":
      rng = np.random.default_rng(seed + c)
      noise = rng.normal(size=(size, size))
      freq = np.fft.fftfreq(size)
      smooth = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-(freq[:, None]**2 + freq[None]**2) * 400)))
      value = (smooth > 0).astype(np.float32) * 0.8 + 0.1
    else:
      raise DataError(f"unknown texture {kind!r}; use waves, checks or blobs (or pass an image file)")
    layers.append(value)
  return np.clip(np.stack(layers, -1)[None], 0.0, 1.0).astype(np.float32)


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
  """(H, W) of each octave, smallest first: round(side / scale**k) for k = octaves-1, ..., 0 (at least 8 px)."""
  return [(max(8, round(height / scale**k)), max(8, round(width / scale**k))) for k in range(octaves - 1, -1, -1)]


def resize(images: jax.Array, size: Sequence[int]) -> jax.Array:
  """Bilinear resize of [N, H, W, C] to [N, size[0], size[1], C] (half-pixel centres, antialiased when
  shrinking)."""
  return jax.image.resize(images, (images.shape[0], int(size[0]), int(size[1]), images.shape[3]), "linear")


def jitter(images: jax.Array, rng: jax.Array, pixels: int) -> tuple[jax.Array, jax.Array]:
  """Rolls [N, H, W, C] by a random shift of up to `pixels` on each axis; returns (rolled, shift [2])."""
  shift = jax.random.randint(rng, (2,), -pixels, pixels + 1)
  return jnp.roll(images, (shift[0], shift[1]), axis=(1, 2)), shift


def gaussian_blur(images: jax.Array, sigma: float) -> jax.Array:
  """Separable Gaussian blur of [N, H, W, C] (kernel radius 2 sigma, edges reflected); sigma <= 0: unchanged."""
  if sigma <= 0:
    return images
  radius = max(1, int(math.ceil(2 * sigma)))
  taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma)**2)
  taps = jnp.asarray(taps / taps.sum(), images.dtype)
  padded = jnp.pad(images, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="reflect")
  h, w = images.shape[1:3]
  rows = sum(taps[k] * padded[:, k:k + h, :, :] for k in range(2 * radius + 1))
  return sum(taps[k] * rows[:, :, k:k + w, :] for k in range(2 * radius + 1))


@jax.custom_vjp
def normalized_gradient(x: jax.Array) -> jax.Array:
  """The identity whose backward pass divides the incoming gradient by its mean absolute value (+1e-8): a plain
  gradient step through it is DeepDream's normalised step."""
  return x


def _normalized_fwd(x: jax.Array) -> tuple[jax.Array, None]:
  return x, None


def _normalized_bwd(_, g: jax.Array) -> tuple[jax.Array]:
  return (g / (jnp.mean(jnp.abs(g)) + 1e-8),)


normalized_gradient.defvjp(_normalized_fwd, _normalized_bwd)
