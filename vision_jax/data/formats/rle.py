"""COCO segmentations to masks in NumPy, without pycocotools: run-length encodings (RLE) and polygons.

A COCO RLE lists run lengths over the mask's pixels in column-major order (down the first column, then the
next), starting with a run of 0s. It is stored either as a list of ints ("uncompressed") or as a string in
COCO's compact form: each count is written in 5-bit groups, low group first, one character per group (the
character code minus 48), with bit 0x20 set on every group but the last and bit 0x10 of the last group giving
the sign; from the fourth count on, what is written is the difference to the count two places before.
`encode_mask` writes that form (what `pycocotools.mask.encode` gives), `segmentation_to_mask` reads it.

Polygons are rasterised the way the COCO API does it, so that masks match `pycocotools.mask` pixel for pixel:
vertices are scaled by 5 and rounded, the edges are walked point by point on that finer grid, and every
crossing of a pixel-centre column flips the mask at the rounded-up row where it crosses. Several polygons of
one object are united.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vision_jax.errors import DataError

_POLYGON_SCALE = 5.0  # the finer grid the COCO API walks polygon edges on


def decode_counts_string(text: str) -> np.ndarray:
  """The run lengths of a compressed COCO RLE string.

  Args:
    text: the "counts" string of a compressed RLE.

  Returns:
    int64 [R] run lengths, starting with a run of 0s.

  Raises:
    ValueError: a string that ends inside a count.
  """
  counts: list[int] = []
  position = 0
  while position < len(text):
    value, shift, more = 0, 0, True
    while more:
      if position >= len(text):
        raise ValueError("the counts string ends inside a count")
      group = ord(text[position]) - 48
      value |= (group & 0x1F) << shift
      more = bool(group & 0x20)
      position += 1
      shift += 5
      if not more and group & 0x10:
        value -= 1 << shift  # sign-extend the last group
    if len(counts) > 2:
      value += counts[-2]
    counts.append(value)
  return np.asarray(counts, np.int64)


def encode_counts_string(counts: np.ndarray) -> str:
  """The compressed COCO RLE string of run lengths (the inverse of `decode_counts_string`).

  Args:
    counts: [R] non-negative run lengths, starting with a run of 0s.

  Returns:
    The "counts" string.
  """
  counts = [int(c) for c in np.asarray(counts, np.int64)]
  chars = []
  for i, count in enumerate(counts):
    value = count - counts[i - 2] if i > 2 else count
    more = True
    while more:
      group = value & 0x1F
      value >>= 5  # arithmetic shift: a negative value ends at -1
      more = value != -1 if group & 0x10 else value != 0
      chars.append(chr((group | (0x20 if more else 0)) + 48))
  return "".join(chars)


def mask_to_counts(mask: np.ndarray) -> np.ndarray:
  """Column-major run lengths of a [H, W] mask (nonzero = inside), starting with a (possibly empty) run of 0s."""
  flat = np.asarray(mask).astype(bool).ravel(order="F")
  edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
  counts = np.diff(np.r_[0, edges, flat.size])
  return np.r_[0, counts] if flat.size and flat[0] else counts


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
  """A [H, W] mask as a compressed COCO RLE, equal to `pycocotools.mask.encode` (with "counts" as str).

  Args:
    mask: [H, W] bool (or 0/1) mask.

  Returns:
    {"size": [H, W], "counts": str}.
  """
  mask = np.asarray(mask)
  if mask.ndim != 2:
    raise DataError(f"encode_mask takes one [H, W] mask, got shape {mask.shape}; encode masks one at a time")
  return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": encode_counts_string(mask_to_counts(mask))}


def counts_to_mask(counts: np.ndarray, height: int, width: int) -> np.ndarray:
  """A uint8 [H, W] 0/1 mask from column-major run lengths that start with 0s.

  Raises:
    ValueError: negative runs or runs that do not add up to H * W.
  """
  counts = np.asarray(counts, np.int64)
  if np.any(counts < 0) or counts.sum() != height * width:
    raise ValueError(f"the runs add up to {counts.sum()} pixels, not {height}x{width} = {height * width}")
  values = np.arange(len(counts), dtype=np.uint8) % 2
  return np.repeat(values, counts).reshape(width, height).T.copy()


def _edge_points(xs: np.ndarray, ys: np.ndarray, x_end: np.ndarray, y_end: np.ndarray) -> tuple[np.ndarray, ...]:
  """The grid points of every polygon edge, walked along its longer axis from its start vertex."""
  us, vs = [], []
  for xs_, ys_, xe, ye in zip(xs.tolist(), ys.tolist(), x_end.tolist(), y_end.tolist()):
    dx, dy = abs(xe - xs_), abs(ye - ys_)
    along_x = dx >= dy
    flip = (xs_ > xe) if along_x else (ys_ > ye)
    if flip:  # walk from the lower end, keep the original direction of travel
      xs_, xe, ys_, ye = xe, xs_, ye, ys_
    steps = np.arange((dx if along_x else dy) + 1)
    t = steps[::-1] if flip else steps
    if along_x:
      slope = (ye - ys_) / dx if dx else 0.0
      us.append(t + xs_)
      vs.append(np.trunc(ys_ + slope * t + 0.5).astype(np.int64))
    else:
      slope = (xe - xs_) / dy
      vs.append(t + ys_)
      us.append(np.trunc(xs_ + slope * t + 0.5).astype(np.int64))
  return np.concatenate(us), np.concatenate(vs)


def polygon_counts(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
  """The column-major run lengths of one polygon, as the COCO API rasterises it.

  Args:
    polygon: [2K] x0, y0, x1, y1, ... in pixels.
    height: mask height H.
    width: mask width W.

  Returns:
    int64 [R] run lengths starting with 0s, adding up to H * W.
  """
  points = np.asarray(polygon, np.float64).reshape(-1, 2)
  grid = np.trunc(_POLYGON_SCALE * points + 0.5).astype(np.int64)
  xs, ys = grid[:, 0], grid[:, 1]
  u, v = _edge_points(xs, ys, np.roll(xs, -1), np.roll(ys, -1))
  # Where the walk moves to another column, take the crossing if it is a pixel-centre column.
  moved = np.nonzero(u[1:] != u[:-1])[0] + 1
  column = np.where(u[moved] < u[moved - 1], u[moved], u[moved] - 1)
  column = (column + 0.5) / _POLYGON_SCALE - 0.5
  row = (np.minimum(v[moved], v[moved - 1]) + 0.5) / _POLYGON_SCALE - 0.5
  on_centre = (np.floor(column) == column) & (column >= 0) & (column <= width - 1)
  rows = np.ceil(np.clip(row[on_centre], 0, height)).astype(np.int64)
  flips = np.sort(np.append(column[on_centre].astype(np.int64) * height + rows, height * width))
  gaps = np.diff(flips, prepend=0)
  # Two flips at one pixel cancel: a zero gap joins the gap after it onto the run before it.
  counts = [int(gaps[0])]
  j = 1
  while j < len(gaps):
    if gaps[j] > 0:
      counts.append(int(gaps[j]))
      j += 1
    else:
      j += 1
      if j < len(gaps):
        counts[-1] += int(gaps[j])
        j += 1
  return np.asarray(counts, np.int64)


def segmentation_to_mask(segmentation: Any, height: int, width: int, where: str) -> np.ndarray:
  """A COCO annotation's `segmentation` as a uint8 [H, W] 0/1 mask.

  Args:
    segmentation: a list of polygons ([x0, y0, x1, y1, ...] each), or an RLE {"size": [H, W], "counts": list
      of ints or compressed string}; an empty list or None gives an empty mask.
    height: the image height H.
    width: the image width W.
    where: the annotation, for error messages.

  Raises:
    DataError: a malformed segmentation or an RLE of another size than the image.
  """
  if not segmentation:
    return np.zeros((height, width), np.uint8)
  try:
    if isinstance(segmentation, dict):
      size = [int(s) for s in segmentation["size"]]
      if size != [height, width]:
        raise DataError(f"{where}: the RLE mask is {size[0]}x{size[1]} (HxW) but the image is {height}x{width}; "
                        "fix the segmentation size or the image entry")
      counts = segmentation["counts"]
      counts = decode_counts_string(counts) if isinstance(counts, str) else np.asarray(counts, np.int64)
      return counts_to_mask(counts, height, width)
    mask = np.zeros((height, width), np.uint8)
    for polygon in segmentation:
      if len(polygon) < 6 or len(polygon) % 2:
        raise ValueError(f"a polygon has {len(polygon)} coordinates (need an even number, at least 6)")
      mask |= counts_to_mask(polygon_counts(np.asarray(polygon, np.float64), height, width), height, width)
    return mask
  except (KeyError, TypeError, ValueError) as e:
    raise DataError(f"{where}: malformed segmentation ({type(e).__name__}: {e}); write polygons as "
                    "[[x0, y0, x1, y1, ...]] or an RLE {{'size': [H, W], 'counts': ...}}") from None
