"""A topological prior for matching line drawings: where an image's strokes enclose holes.

Holes (the loops of a 0, 6, 8 or 9; the Euler number's count of enclosed background) are the classic topological
feature of character recognition (Trier, Jain and Taxt, "Feature extraction methods for character recognition - a
survey", Pattern Recognition 1996). They are class-agnostic, computed from each image alone, and they tell apart
exactly the held-out digits a network trained on other classes confuses most (a 9 from a 7, a 6 from a 5 or an 8).

`hole_bands` describes an image by whether its ink encloses a hole in each of `bands` horizontal bands of the ink's
height (2 bands: a loop at the top, at the bottom, both or none). `with_hole_penalty` subtracts `weight` x the L1
distance between two descriptors (a query's and the mean of a class's support descriptors) from any episode or
gallery score, so a 9-like query (hole at the top) loses against a 7 support (no hole) unless the features are far
more alike.

Ink and background: pixels whose channel mean is above `threshold` (on the 0..255 scale) are ink, after inverting
images whose mean is above the middle grey (dark strokes on a light page, e.g. Omniglot). A hole is background that is
not 4-connected to the image border (`scipy.ndimage.binary_fill_holes` semantics) and counts in a band when at least
`min_area` of its pixels lie there.

`graded_hole_bands` averages the binary descriptor over a grid of ink thresholds and minimum areas: a loop that
closes only at a low threshold (a faint joint) or a tiny one counts partly, so two images whose loops are nearly the
same pay a small penalty instead of a full unit.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Scores = Callable[[np.ndarray, np.ndarray], np.ndarray]  # rows -> scores (`evaluation.embedding`'s ClassScores etc.)


def ink_masks(images: np.ndarray, threshold: float = 64.0) -> np.ndarray:
  """Ink of stored images [N, H, W] or [N, H, W, C] on the 0..255 scale -> bool [N, H, W] (module docstring:
  channel mean above `threshold`, images with a light page inverted first)."""
  gray = np.asarray(images, np.float64)
  gray = gray.mean(-1) if gray.ndim == 4 else gray
  light_page = gray.mean((1, 2)) > 127.5
  gray = np.where(light_page[:, None, None], 255.0 - gray, gray)
  return gray > threshold


def enclosed_background(ink: np.ndarray) -> np.ndarray:
  """Holes of ink masks [N, H, W]: background pixels with no 4-connected background path to the border."""
  background = ~np.asarray(ink, bool)
  reached = np.zeros_like(background)
  for edge in ((slice(None), 0), (slice(None), -1), (slice(None), slice(None), 0), (slice(None), slice(None), -1)):
    reached[edge] = background[edge]
  while True:  # grow the border's background one 4-neighbour step at a time until nothing changes
    grown = reached.copy()
    grown[:, 1:] |= reached[:, :-1]
    grown[:, :-1] |= reached[:, 1:]
    grown[:, :, 1:] |= reached[:, :, :-1]
    grown[:, :, :-1] |= reached[:, :, 1:]
    grown &= background
    if np.array_equal(grown, reached):
      return background & ~reached
    reached = grown


def hole_bands(images: np.ndarray, threshold: float = 64.0, min_area: int = 3, bands: int = 2) -> np.ndarray:
  """Where each image's ink encloses holes, by horizontal band of the ink's height.

  Args:
    images: [N, H, W] or [N, H, W, C] stored images (0..255).
    threshold: ink threshold (`ink_masks`).
    min_area: hole pixels a band needs to count as holding a hole.
    bands: equal bands between the ink's first and last row (2: top and bottom half).

  Returns:
    [N, bands] float64, 1.0 where the band holds at least `min_area` hole pixels (blank images: zeros).
  """
  return (band_hole_areas(images, threshold, bands) >= min_area).astype(np.float64)


def band_hole_areas(images: np.ndarray, threshold: float = 64.0, bands: int = 2) -> np.ndarray:
  """Hole pixels [N, bands] of each image in each of `bands` equal bands between its ink's first and last row (the
  areas `hole_bands` thresholds); arguments as there."""
  ink = ink_masks(images, threshold)
  holes = enclosed_background(ink)
  height = ink.shape[1]
  inked_rows = ink.any(2)  # [N, H]
  first = np.argmax(inked_rows, 1)
  last = height - 1 - np.argmax(inked_rows[:, ::-1], 1)
  relative = (np.arange(height)[None, :] - first[:, None]) / np.maximum(last - first, 1)[:, None]
  band = np.clip(np.floor(relative * bands).astype(np.int64), 0, bands - 1)  # [N, H]
  per_row = holes.sum(2)  # [N, H]
  return np.stack([np.sum(np.where(band == b, per_row, 0), 1) for b in range(bands)], 1)


GRADED_THRESHOLDS = (32.0, 64.0, 96.0, 128.0, 160.0)
GRADED_MIN_AREAS = (1, 3, 6)


def graded_hole_bands(images: np.ndarray, thresholds: tuple[float, ...] = GRADED_THRESHOLDS,
                      min_areas: tuple[int, ...] = GRADED_MIN_AREAS, bands: int = 2) -> np.ndarray:
  """`hole_bands` averaged over every (ink threshold, minimum area) pair of the grid: per band, the fraction of
  settings under which it holds a hole.

  Args:
    images: [N, H, W] or [N, H, W, C] stored images (0..255).
    thresholds: the ink thresholds (`ink_masks`).
    min_areas: the hole pixels a band needs (`hole_bands`).
    bands: equal bands of the ink's height.

  Returns:
    [N, bands] float64 in [0, 1].
  """
  areas = [band_hole_areas(images, t, bands) for t in thresholds]  # one flood fill per threshold
  return np.mean([area >= a for area in areas for a in min_areas], axis=0, dtype=np.float64)


DESCRIPTORS = {"binary": hole_bands, "graded": graded_hole_bands}


def hole_mismatch(descriptors: np.ndarray, query_rows: np.ndarray, support_rows: np.ndarray) -> np.ndarray:
  """L1 distance [E, q, N] between each query's descriptor and each class's mean support descriptor.

  Args:
    descriptors: [R, D] descriptors of every row (`hole_bands`).
    query_rows: [E, q] each episode's query rows; support_rows: [E, N, K] each class's support rows.
  """
  d = np.asarray(descriptors, np.float64)
  support = d[np.asarray(support_rows)].mean(2)  # [E, N, D]
  return np.abs(d[np.asarray(query_rows)][:, :, None, :] - support[:, None, :, :]).sum(-1)


def with_hole_penalty(class_scores: Scores, pair_scores: Scores, descriptors: np.ndarray,
                      weight: float) -> tuple[Scores, Scores]:
  """Episode and gallery scores minus `weight` x the L1 distance of hole descriptors.

  Args:
    class_scores: the episodes' base scores, (query_rows [E, q], support_rows [E, N, K]) -> [E, q, N].
    pair_scores: the gallery's base scores, (rows_a [n], rows_b [m]) -> [n, m].
    descriptors: [R, D] descriptors of every row (`hole_bands`).
    weight: the penalty per unit of L1 distance, in the base score's units.

  Returns:
    (class_scores, pair_scores) with the penalty; a class's descriptor is the mean of its K support descriptors.
  """
  d = np.asarray(descriptors, np.float64)

  def penalised_class_scores(query_rows: np.ndarray, support_rows: np.ndarray) -> np.ndarray:
    return class_scores(query_rows, support_rows) - weight * hole_mismatch(d, query_rows, support_rows)

  def penalised_pair_scores(rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    mismatch = np.abs(d[np.asarray(rows_a)][:, None, :] - d[np.asarray(rows_b)][None, :, :]).sum(-1)
    return pair_scores(rows_a, rows_b) - weight * mismatch

  return penalised_class_scores, penalised_pair_scores
