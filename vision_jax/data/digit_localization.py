"""One embedded-MNIST digit printed on a light card, photographed at an angle (`digit_localization`).

Each example is a dark canvas (default 64x64x1 uint8) with one card: a rectangle around the digit (the digit's
nonzero crop plus a random margin of 2..8 source pixels per side) mapped into the canvas by a random affine
warp (rotation up to 30 degrees, anisotropic scale, shear), filled with a grey level of 150..235. The digit is
printed in dark ink on the card (pixel = card level * (1 - digit / 255)) and warped with it; its height on the
canvas is about 18..34 px and it always lies fully inside the canvas, while card corners may leave it.
A pixel belongs to the card when its centre maps inside the rectangle; the digit is sampled bilinearly at
pixel centres.

Features: `image`; `label` (the digit); `boxes` [1, 4] tight around the digit's ink (sampled value >=
`INK_THRESHOLD`; x2, y2 = last ink column, row + 1); `box_labels` [1]; `num_objects` (1); `keypoints` [4, 3]:
the card's corners (top_left, top_right, bottom_right, bottom_left of the unwarped card) as x, y in pixels
and visibility 1, or 0 when the corner lies outside the canvas; `source_index` (the digit's index in the vendored
10k file). Train examples use each train digit once (seed 0), test examples each test digit once (seed 1).
"""

from __future__ import annotations

import numpy as np

from vision_jax.data import embedded_mnist
from vision_jax.data.digit_scenes import tight_boxes
from vision_jax.data.features import Feature, object_features

INK_THRESHOLD = 128
CLASS_NAMES = tuple(str(d) for d in range(10))
KEYPOINT_NAMES = ("top_left", "top_right", "bottom_right", "bottom_left")
FLIP_PAIRS = ((0, 1), (2, 3))
SPLIT_SEEDS = {"train": 0, "test": 1}
_CHUNK = 1000  # examples rendered at once (bounds the float64 sampling grids to ~100 MiB)


def _warps(rng: np.random.Generator, digit_boxes: np.ndarray, canvas_size: int):
  """Random card rectangles [N, 4] in digit coordinates, affine matrices [N, 2, 2] and offsets [N, 2] that map
  digit coordinates p to canvas coordinates A @ p + b, with the digit's box inside the canvas."""
  n = len(digit_boxes)
  margins = rng.uniform(2.0, 8.0, (n, 4)) * np.array([-1, -1, 1, 1])
  cards = digit_boxes + margins
  angle = np.deg2rad(rng.uniform(-30, 30, n))
  height = digit_boxes[:, 3] - digit_boxes[:, 1]
  scale = rng.uniform(18, 34, n) / height
  stretch = np.exp(rng.uniform(-0.15, 0.15, (n, 2)))
  shear = rng.uniform(-0.2, 0.2, n)
  cos, sin = np.cos(angle), np.sin(angle)
  rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
  shape = np.zeros((n, 2, 2))
  shape[:, 0, 0], shape[:, 0, 1], shape[:, 1, 1] = stretch[:, 0], shear, stretch[:, 1]
  matrix = rotation @ shape * scale[:, None, None]
  centre = (digit_boxes[:, :2] + digit_boxes[:, 2:]) / 2
  target = canvas_size / 2 + rng.uniform(-12, 12, (n, 2))
  offset = target - np.einsum("nij,nj->ni", matrix, centre)
  corners = np.einsum("nij,nkj->nki", matrix, _corners(digit_boxes)) + offset[:, None]
  low, high = corners.min(1), corners.max(1)
  offset += np.clip(1.0 - low, 0, None) - np.clip(high - (canvas_size - 1.0), 0, None)
  return cards, matrix, offset


def _corners(rects: np.ndarray) -> np.ndarray:
  """[N, 4, 2] corners (top-left, top-right, bottom-right, bottom-left) of [N, 4] xyxy rectangles."""
  x1, y1, x2, y2 = rects.T
  return np.stack([np.stack([x1, y1], -1), np.stack([x2, y1], -1), np.stack([x2, y2], -1),
                   np.stack([x1, y2], -1)], 1)


def _sample(digits: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Bilinear samples [N, ...] of digits [N, h, w] at continuous coordinates x, y [N, ...] (pixel (r, c) centred at
  c + 0.5, r + 0.5), zero outside."""
  n, h, w = digits.shape
  padded = np.pad(digits.astype(np.float32), ((0, 0), (2, 2), (2, 2))).ravel()
  u = np.clip(x + 1.5, 0, w + 2.999)
  v = np.clip(y + 1.5, 0, h + 2.999)
  u0, v0 = u.astype(np.int32), v.astype(np.int32)
  fu, fv = u - u0, v - v0
  base = (np.arange(n, dtype=np.int32) * ((h + 4) * (w + 4))).reshape((n,) + (1,) * (x.ndim - 1)) + v0 * (w + 4) + u0
  top = (1 - fu) * padded[base] + fu * padded[base + 1]
  bottom = (1 - fu) * padded[base + w + 4] + fu * padded[base + w + 5]
  return (1 - fv) * top + fv * bottom


def _render(digits, cards, matrix, offset, card_level, background, canvas_size):
  """Images float32 [N, S, S] and ink masks bool [N, S, S] of one chunk."""
  centres = np.arange(canvas_size, dtype=np.float32) + 0.5
  inverse = np.linalg.inv(matrix).astype(np.float32)[:, :, :, None, None]  # [N, 2, 2, 1, 1]
  gx = centres[None, None, :] - offset[:, 0, None, None].astype(np.float32)  # [N, 1, S]
  gy = centres[None, :, None] - offset[:, 1, None, None].astype(np.float32)  # [N, S, 1]
  x = inverse[:, 0, 0] * gx + inverse[:, 0, 1] * gy
  y = inverse[:, 1, 0] * gx + inverse[:, 1, 1] * gy
  c = cards[:, :, None, None]
  on_card = (x >= c[:, 0]) & (x < c[:, 2]) & (y >= c[:, 1]) & (y < c[:, 3])
  ink = _sample(digits, x, y)
  printed = card_level[:, None, None] * (1 - ink / 255.0)
  image = np.where(on_card, printed, background[:, None, None])
  return image, on_card & (ink >= INK_THRESHOLD)


def make_examples(digits: np.ndarray, labels: np.ndarray, seed: int, source_indices: np.ndarray | None = None,
                  canvas_size: int = 64, noise_std: float = 4.0) -> dict[str, np.ndarray]:
  """One card example per digit, in a seeded order, deterministic in `seed`.

  Args:
    digits: uint8 [N, h, w] source digits.
    labels: [N] their classes.
    seed: NumPy generator seed.
    source_indices: [N] index of each digit reported in `source_index` (default 0..N-1).
    canvas_size: S.
    noise_std: std of the Gaussian pixel noise added everywhere (0 for exact levels).

  Returns:
    image uint8 [N, S, S, 1]; label int32 [N]; boxes float32 [N, 1, 4]; box_labels int32 [N, 1]; num_objects
    int32 [N]; keypoints float32 [N, 4, 3]; source_index int32 [N].
  """
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(digits))
  digits, labels = np.asarray(digits)[order], np.asarray(labels)[order].astype(np.int32)
  source_indices = (np.arange(len(order)) if source_indices is None else np.asarray(source_indices))[order]
  n = len(digits)
  cards, matrix, offset = _warps(rng, tight_boxes(digits > 0).astype(np.float64), canvas_size)
  card_level = rng.uniform(150, 235, n)
  background = rng.uniform(0, 50, n)
  image = np.empty((n, canvas_size, canvas_size, 1), np.uint8)
  boxes = np.empty((n, 1, 4), np.float32)
  for start in range(0, n, _CHUNK):
    part = slice(start, start + _CHUNK)
    pixels, ink = _render(digits[part], cards[part], matrix[part], offset[part], card_level[part], background[part],
                          canvas_size)
    if noise_std:
      pixels = pixels + rng.normal(0, noise_std, pixels.shape)
    image[part, :, :, 0] = np.clip(np.rint(pixels), 0, 255)
    boxes[part, 0] = tight_boxes(ink)
  corners = np.einsum("nij,nkj->nki", matrix, _corners(cards)) + offset[:, None]
  visible = np.all((corners >= 0) & (corners <= canvas_size), -1)
  keypoints = np.concatenate([corners, visible[..., None]], -1).astype(np.float32)
  return {"image": image, "label": labels, "boxes": boxes, "box_labels": labels[:, None].copy(),
          "num_objects": np.ones(n, np.int32), "keypoints": keypoints,
          "source_index": source_indices.astype(np.int32)}


def features(canvas_size: int = 64) -> dict[str, Feature]:
  """The typed features of `digit_localization` examples."""
  return {"image": Feature("image", (canvas_size, canvas_size, 1), "uint8"),
          "label": Feature("label", (), "int32", 10, CLASS_NAMES),
          **object_features(1, 10, CLASS_NAMES),
          "keypoints": Feature("keypoints", (4, 3), "float32", keypoint_names=KEYPOINT_NAMES, flip_pairs=FLIP_PAIRS),
          "source_index": Feature("value", (), "int32")}


def split_arrays(split: str, canvas_size: int = 64) -> tuple[dict[str, np.ndarray], dict[str, Feature]]:
  """A split of `digit_localization`: train 8,000 examples (each train digit once), test 2,000 (test digits).

  Returns:
    (arrays, features) as `make_examples` and `features` give them.
  """
  images, labels = embedded_mnist.load_arrays()
  pool = np.arange(embedded_mnist.NUM_TRAIN) if split == "train" else np.arange(embedded_mnist.NUM_TRAIN, len(images))
  arrays = make_examples(images[pool], labels[pool], SPLIT_SEEDS[split], pool, canvas_size)
  return arrays, features(canvas_size)
