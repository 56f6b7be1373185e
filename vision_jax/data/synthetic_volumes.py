"""A synthetic volumetric task: noisy 16^3 volumes holding nothing, a sphere, a cube or a cylinder.

Each object is a solid of random size, position and contrast on a dark background; cubes are axis-aligned and
cylinders lie along a random axis. Voxels carry Gaussian noise, and volumes are stored as uint8 [D, H, W, 1]
(0..255, like images, so the `to_float` op maps them to [0, 1]). What separates the shapes is their form, not
their size: the objects' volumes overlap between classes.

Example:
  >>> volumes, labels = generate(8, seed=0)
  >>> volumes.shape, volumes.dtype
  ((8, 16, 16, 16, 1), dtype('uint8'))
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("empty", "sphere", "cube", "cylinder")
SIZE = 16
BACKGROUND = 0.25  # mean intensity of empty space, in [0, 1]
_CHUNK = 512


def shape_masks(labels: np.ndarray, centres: np.ndarray, radii: np.ndarray, half_lengths: np.ndarray,
                axes: np.ndarray, size: int = SIZE) -> np.ndarray:
  """Which voxels (by their centres) lie inside each example's object.

  Args:
    labels: [N] classes indexing `CLASS_NAMES`.
    centres: [N, 3] object centres in voxel coordinates (z, y, x).
    radii: [N] sphere radius, cube half-side, or cylinder radius.
    half_lengths: [N] half-length of a cylinder along its axis (unused for other classes).
    axes: [N] axis (0, 1, 2) a cylinder lies along.
    size: side of the volume.

  Returns:
    bool [N, size, size, size]; all False for `empty`.
  """
  coords = np.arange(size, dtype=np.float32)
  d = coords[None, None, :] - centres[:, :, None].astype(np.float32)  # [N, 3, size]: offset per axis
  dz, dy, dx = (d[:, 0, :, None, None], d[:, 1, None, :, None], d[:, 2, None, None, :])
  r = radii.astype(np.float32)[:, None, None, None]
  dist_sq = dz ** 2 + dy ** 2 + dx ** 2
  sphere = dist_sq <= r ** 2
  cube = (np.abs(dz) <= r) & (np.abs(dy) <= r) & (np.abs(dx) <= r)
  axis = axes[:, None, None, None]
  along = np.where(axis == 0, dz, np.where(axis == 1, dy, dx))
  cylinder = (dist_sq - along ** 2 <= r ** 2) & (np.abs(along) <= half_lengths[:, None, None, None])
  cls = labels[:, None, None, None]
  return np.where(cls == 1, sphere, np.where(cls == 2, cube, np.where(cls == 3, cylinder, False)))


def generate(num_examples: int, seed: int, size: int = SIZE, noise_std: float = 0.2
             ) -> tuple[np.ndarray, np.ndarray]:
  """Noisy volumes with balanced shape classes, deterministic in `seed`.

  Args:
    num_examples: N.
    seed: NumPy generator seed; the same seed gives the same volumes and labels.
    size: side of each volume (the objects' sizes are set for 16).
    noise_std: standard deviation of the voxel noise, on the [0, 1] intensity scale.

  Returns:
    (volumes uint8 [N, size, size, size, 1], labels int32 [N] indexing `CLASS_NAMES`); every class has N // 4
    or N // 4 + 1 examples, in shuffled order.
  """
  rng = np.random.default_rng(seed)
  labels = rng.permutation(np.arange(num_examples) % len(CLASS_NAMES)).astype(np.int32)
  # Sphere radius, cube half-side, cylinder radius (>= 2.5 so that a cylinder's disk is not a square).
  radii = np.select([labels == 1, labels == 2], [rng.uniform(3.0, 6.0, num_examples),
                                                 rng.uniform(2.0, 4.5, num_examples)],
                    rng.uniform(2.5, 4.5, num_examples))
  half_lengths = rng.uniform(3.0, 6.5, num_examples)
  axes = rng.integers(0, 3, num_examples)
  extent = np.where(labels == 3, np.maximum(radii, half_lengths), radii)  # furthest reach from the centre
  low = extent[:, None]
  centres = low + rng.uniform(0.0, 1.0, (num_examples, 3)) * np.maximum(size - 1 - 2 * low, 0.0)
  contrast = rng.uniform(0.35, 0.6, num_examples).astype(np.float32)
  volumes = np.empty((num_examples, size, size, size, 1), np.uint8)
  for lo in range(0, num_examples, _CHUNK):  # bounded memory: float32 [_CHUNK, size, size, size] at a time
    part = slice(lo, lo + _CHUNK)
    masks = shape_masks(labels[part], centres[part], radii[part], half_lengths[part], axes[part], size)
    noise = rng.standard_normal(masks.shape, dtype=np.float32)
    values = BACKGROUND + contrast[part, None, None, None] * masks + noise_std * noise
    volumes[part, ..., 0] = np.round(np.clip(values, 0.0, 1.0) * 255)
  return volumes, labels
