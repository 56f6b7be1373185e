"""Per-region features of selective search (Uijlings et al. 2013): colour spaces, colour and texture histograms,
sizes, boxes and adjacency of the regions of a label map. Host NumPy.

Every colour space maps an RGB image in [0, 1] to channels in [0, 1] (the same image feeds the Felzenszwalb
segmentation and the histograms):
  rgb   R, G, B
  hsv   hue / 360, saturation, value
  lab   L / 100, (a + 128) / 255, (b + 128) / 255 (CIE L*a*b*, sRGB with a D65 white), clipped to [0, 1]
  rgi   normalised r = R / (R + G + B), g = G / (R + G + B) (1/3 each for black), intensity (R + G + B) / 3
  h     hue / 360 alone
  i     intensity (R + G + B) / 3 alone
"""

from __future__ import annotations

import numpy as np

from vision_jax.errors import DataError
from vision_jax.ops.felzenszwalb import filter1d, gaussian_kernel1d, grid_edges

COLOUR_SPACES = ("rgb", "hsv", "lab", "rgi", "h", "i")
COLOUR_BINS = 25  # bins per channel of the colour histogram
TEXTURE_BINS = 10  # bins per orientation and channel of the texture histogram
TEXTURE_ORIENTATIONS = 8
TEXTURE_SIGMA = 1.0


def as_rgb(image: np.ndarray) -> np.ndarray:
  """[H, W], [H, W, 1] or [H, W, 3] uint8 (scaled by 1/255) or float image in [0, 1] -> float64 [H, W, 3]."""
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[:, :, None]
  if image.ndim != 3 or image.shape[2] not in (1, 3) or min(image.shape[:2]) < 2:
    raise DataError(f"selective search needs an image [H, W], [H, W, 1] or [H, W, 3] with H, W >= 2; got shape "
                    f"{image.shape}")
  rgb = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
  return np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb


def _hsv(rgb: np.ndarray) -> np.ndarray:
  value = rgb.max(-1)
  chroma = value - rgb.min(-1)
  safe = np.where(chroma > 0, chroma, 1.0)
  r, g, b = np.moveaxis(rgb, -1, 0)
  hue = np.where(value == r, ((g - b) / safe) % 6, np.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4))
  hue = np.where(chroma > 0, hue / 6.0, 0.0)
  saturation = np.where(value > 0, chroma / np.where(value > 0, value, 1.0), 0.0)
  return np.stack([hue, saturation, value], -1)


def _lab(rgb: np.ndarray) -> np.ndarray:
  linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055)**2.4, rgb / 12.92)
  to_xyz = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
  xyz = linear @ to_xyz.T / np.array([0.950456, 1.0, 1.088754])
  f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
  lightness = 116.0 * f[..., 1] - 16.0
  a = 500.0 * (f[..., 0] - f[..., 1])
  b = 200.0 * (f[..., 1] - f[..., 2])
  return np.clip(np.stack([lightness / 100.0, (a + 128.0) / 255.0, (b + 128.0) / 255.0], -1), 0.0, 1.0)


def _rgi(rgb: np.ndarray) -> np.ndarray:
  total = rgb.sum(-1, keepdims=True)
  chromaticity = np.where(total > 0, rgb[..., :2] / np.where(total > 0, total, 1.0), 1.0 / 3.0)
  return np.concatenate([chromaticity, total / 3.0], -1)


def convert_colour(rgb: np.ndarray, space: str) -> np.ndarray:
  """Converts float [H, W, 3] RGB in [0, 1] to `space` (see the module docstring): float64 [H, W, C], C = 3 or 1."""
  if space == "rgb":
    return rgb
  if space in ("hsv", "h"):
    hsv = _hsv(rgb)
    return hsv if space == "hsv" else hsv[..., :1]
  if space == "lab":
    return _lab(rgb)
  if space in ("rgi", "i"):
    rgi = _rgi(rgb)
    return rgi if space == "rgi" else rgi[..., 2:]
  raise DataError(f"unknown colour space {space!r}: use one of {', '.join(COLOUR_SPACES)}")


def oriented_gradients(image: np.ndarray, sigma: float = TEXTURE_SIGMA) -> np.ndarray:
  """Gaussian-derivative responses in 8 orientations: float64 [H, W, C, 8] >= 0.

  The first derivative along direction theta (0, 45, 90, 135 degrees; x right, y down) of each channel smoothed
  with `sigma`, split into its positive part (orientations 0..3) and the positive part of its negative
  (orientations 4..7, theta + 180 degrees).
  """
  smooth, derivative = gaussian_kernel1d(sigma), gaussian_kernel1d(sigma, order=1)
  dx = filter1d(filter1d(image, smooth, 0), derivative, 1)
  dy = filter1d(filter1d(image, derivative, 0), smooth, 1)
  angles = np.deg2rad([0.0, 45.0, 90.0, 135.0])
  directional = np.cos(angles) * dx[..., None] + np.sin(angles) * dy[..., None]
  return np.concatenate([np.maximum(directional, 0.0), np.maximum(-directional, 0.0)], -1)


def bin_indices(values: np.ndarray, bins: int) -> np.ndarray:
  """Bin of each value in [0, 1] among `bins` equal bins (1.0 goes in the last): int64 of `values`' shape."""
  return np.clip((values * bins).astype(np.int64), 0, bins - 1)


def region_histograms(labels: np.ndarray, binned: np.ndarray, bins: int, num_regions: int) -> np.ndarray:
  """L1-normalised histograms of each region over every feature channel.

  Args:
    labels: int [H, W] region ids 0..R-1.
    binned: int [H, W, D] bin index (0..bins-1) of each pixel in each of D feature channels.
    bins: bins per channel.
    num_regions: R.

  Returns:
    float64 [R, D * bins], each row summing to 1 (channel d's histogram in columns d * bins .. (d + 1) * bins).
  """
  channels = binned.shape[-1]
  index = (labels[..., None].astype(np.int64) * channels + np.arange(channels)) * bins + binned
  counts = np.bincount(index.ravel(), minlength=num_regions * channels * bins).astype(np.float64)
  counts = counts.reshape(num_regions, channels * bins)
  return counts / np.maximum(counts.sum(1, keepdims=True), 1.0)


def colour_histograms(labels: np.ndarray, colour: np.ndarray, num_regions: int) -> np.ndarray:
  """25-bin histograms per channel of each region's colours: float64 [R, C * 25], L1-normalised per region."""
  return region_histograms(labels, bin_indices(colour, COLOUR_BINS), COLOUR_BINS, num_regions)


def texture_bins(colour: np.ndarray) -> np.ndarray:
  """Bin (0..9) of every pixel's response in each channel and orientation: int64 [H, W, C * 8].

  Each channel's responses are divided by that channel's largest response in the image (all orientations), so
  the 10 bins span [0, max].
  """
  responses = oriented_gradients(colour)
  top = responses.max(axis=(0, 1, 3), keepdims=True)
  scaled = responses / np.where(top > 0, top, 1.0)
  return bin_indices(scaled, TEXTURE_BINS).reshape(colour.shape[0], colour.shape[1], -1)


def texture_histograms(labels: np.ndarray, binned_texture: np.ndarray, num_regions: int) -> np.ndarray:
  """10-bin histograms per channel and orientation of each region: float64 [R, C * 8 * 10], L1-normalised."""
  return region_histograms(labels, binned_texture, TEXTURE_BINS, num_regions)


def region_boxes(labels: np.ndarray, num_regions: int) -> tuple[np.ndarray, np.ndarray]:
  """Sizes and boxes of the regions of a label map.

  Returns:
    (sizes int64 [R] pixel counts, boxes float64 [R, 4] xyxy with x2, y2 = last column, row + 1).
  """
  height, width = labels.shape
  flat = labels.ravel()
  rows = np.repeat(np.arange(height), width)
  cols = np.tile(np.arange(width), height)
  boxes = np.zeros((num_regions, 4))
  boxes[:, 0], boxes[:, 1] = width, height
  np.minimum.at(boxes[:, 0], flat, cols)
  np.minimum.at(boxes[:, 1], flat, rows)
  np.maximum.at(boxes[:, 2], flat, cols + 1)
  np.maximum.at(boxes[:, 3], flat, rows + 1)
  return np.bincount(flat, minlength=num_regions), boxes


def adjacent_pairs(labels: np.ndarray) -> np.ndarray:
  """Pairs of regions that touch (8-connected): int64 [P, 2] with the smaller id first, unique, sorted."""
  flat = labels.ravel().astype(np.int64)
  a, b = grid_edges(*labels.shape)
  a, b = flat[a], flat[b]
  keep = a != b
  pair = np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], 1)
  return np.unique(pair, axis=0) if len(pair) else pair.reshape(0, 2)
