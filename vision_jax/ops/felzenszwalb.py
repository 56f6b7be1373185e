"""Felzenszwalb & Huttenlocher (2004) graph-based image segmentation, on the host in NumPy.

The image is a graph: one node per pixel, 8-connected edges weighted by the Euclidean colour distance between
the two pixels after Gaussian smoothing. Edges are visited in increasing weight (a stable sort: among equal
weights, right, down, down-right, then up-right edges, each in raster order). An edge joins its two components
C1, C2 when its weight is at most MInt(C1, C2) = min(Int(C1) + k / |C1|, Int(C2) + k / |C2|), Int being the
largest edge weight inside a component (the paper's rule, `<=`). A second pass over the same edges then joins
every pair of adjacent components of which one has fewer than `min_size` pixels.

Conventions follow scikit-image's `felzenszwalb`: uint8 images are scaled to [0, 1], `scale` is k for
0..255 colour values (the threshold uses k / 255 on the [0, 1] image), and smoothing is a separable Gaussian
with `sigma` truncated at 4 sigma with mirrored borders (scipy's 'reflect').
"""

from __future__ import annotations

import numpy as np

from vision_jax.errors import DataError

TRUNCATE = 4.0  # Gaussian kernels reach int(TRUNCATE * sigma + 0.5) pixels each side


def gaussian_kernel1d(sigma: float, order: int = 0) -> np.ndarray:
  """The [2r + 1] correlation kernel of a 1-D Gaussian (order 0) or of its first derivative (order 1).

  Args:
    sigma: standard deviation in pixels (> 0).
    order: 0 for smoothing, 1 for the derivative of the smoothed signal (the correlation kernel is x / sigma^2
      times the Gaussian: correlating it with a ramp that rises 1 per pixel gives 1 up to the truncation, 0.99993).

  Returns:
    float64 [2r + 1] weights with r = int(4 sigma + 0.5), the centre at index r.
  """
  radius = int(TRUNCATE * sigma + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  weights = np.exp(-0.5 * (x / sigma)**2)
  weights /= weights.sum()
  return weights if order == 0 else x / sigma**2 * weights


def filter1d(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
  """Correlates float `image` with an odd 1-D `kernel` along `axis`, mirroring the borders (d c b a | a b c d).

  Returns:
    float64 array of `image`'s shape.
  """
  radius = len(kernel) // 2
  pad = [(0, 0)] * image.ndim
  pad[axis] = (radius, radius)
  padded = np.pad(np.asarray(image, np.float64), pad, mode="symmetric")
  size = image.shape[axis]
  out = np.zeros(image.shape, np.float64)
  for offset, weight in enumerate(kernel):
    out += weight * np.take(padded, np.arange(offset, offset + size), axis=axis)
  return out


def gaussian_smooth(image: np.ndarray, sigma: float) -> np.ndarray:
  """Smooths each channel of float [H, W, C] `image` with a 2-D Gaussian of `sigma` (0: unchanged); float64."""
  image = np.asarray(image, np.float64)
  if sigma <= 0:
    return image
  kernel = gaussian_kernel1d(sigma)
  return filter1d(filter1d(image, kernel, 0), kernel, 1)


def grid_edges(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
  """The 8-connected edges of an H x W pixel grid as two int64 [E] arrays of flat pixel indices.

  Order: right (y, x)-(y, x+1), down (y, x)-(y+1, x), down-right (y, x)-(y+1, x+1), up-right
  (y+1, x)-(y, x+1), each in raster order; E = 4HW - 3(H + W) + 2.
  """
  ids = np.arange(height * width, dtype=np.int64).reshape(height, width)
  pairs = [(ids[:, :-1], ids[:, 1:]), (ids[:-1, :], ids[1:, :]), (ids[:-1, :-1], ids[1:, 1:]),
           (ids[1:, :-1], ids[:-1, 1:])]
  return np.concatenate([a.ravel() for a, _ in pairs]), np.concatenate([b.ravel() for _, b in pairs])


def _zero_weight_components(num_nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Root (smallest member) of each node's component in the graph of edges a-b: int64 [num_nodes].

  Vectorised hooking and pointer jumping; every parent points to a smaller index, so no cycles form.
  """
  parent = np.arange(num_nodes, dtype=np.int64)
  while True:
    ra, rb = parent[a], parent[b]
    differ = ra != rb
    if not differ.any():
      return parent
    low, high = np.minimum(ra, rb)[differ], np.maximum(ra, rb)[differ]
    np.minimum.at(parent, high, low)
    while True:
      jumped = parent[parent]
      if np.array_equal(jumped, parent):
        break
      parent = jumped


def _as_float_image(image: np.ndarray) -> np.ndarray:
  """[H, W] or [H, W, C] uint8 (scaled to [0, 1]) or float image -> float64 [H, W, C]."""
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[:, :, None]
  if image.ndim != 3 or min(image.shape) < 1:
    raise DataError(f"felzenszwalb needs an image of shape [H, W] or [H, W, C]; got shape {image.shape}")
  if image.dtype == np.uint8:
    return image.astype(np.float64) / 255.0
  return image.astype(np.float64)


def felzenszwalb(image: np.ndarray, scale: float = 1.0, sigma: float = 0.8, min_size: int = 20) -> np.ndarray:
  """Segments an image into regions with Felzenszwalb & Huttenlocher's graph method.

  Args:
    image: [H, W] or [H, W, C] image, uint8 (scaled to [0, 1]) or float (used as it is).
    scale: k for 0..255 colour values; larger k gives larger regions.
    sigma: standard deviation of the Gaussian smoothing before edge weights are taken (0: none).
    min_size: regions smaller than this are merged into a neighbour in the second pass.

  Returns:
    int32 [H, W] region labels 0..R-1, numbered in raster order of each region's first pixel.
  """
  if scale < 0 or sigma < 0 or min_size < 0:
    raise DataError(f"felzenszwalb needs scale, sigma, min_size >= 0; got {scale}, {sigma}, {min_size}")
  smooth = gaussian_smooth(_as_float_image(image), sigma)
  height, width, _ = smooth.shape
  flat = smooth.reshape(height * width, -1)
  a, b = grid_edges(height, width)
  weights = np.sqrt(((flat[a] - flat[b])**2).sum(-1))
  order = np.argsort(weights, kind="stable")
  a, b, weights = a[order], b[order], weights[order]
  # Edges of weight 0 always join (their weight is below any threshold), whatever the order: do them at once.
  zero = int(np.searchsorted(weights, 0.0, side="right"))
  roots = _zero_weight_components(height * width, a[:zero], b[:zero])
  parent = roots.tolist()
  size = np.bincount(roots, minlength=height * width).tolist()
  internal = [0.0] * (height * width)
  k = scale / 255.0
  a_list, b_list, w_list = a[zero:].tolist(), b[zero:].tolist(), weights[zero:].tolist()

  def find(x: int) -> int:
    while parent[x] != x:
      parent[x] = parent[parent[x]]
      x = parent[x]
    return x

  def join(ra: int, rb: int) -> int:
    if size[ra] < size[rb]:
      ra, rb = rb, ra
    parent[rb] = ra
    size[ra] += size[rb]
    return ra

  for u, v, w in zip(a_list, b_list, w_list):
    ru, rv = find(u), find(v)
    if ru != rv and w <= internal[ru] + k / size[ru] and w <= internal[rv] + k / size[rv]:
      internal[join(ru, rv)] = w  # edges come in increasing weight, so w is the new component's largest
  for u, v in zip(a_list, b_list):
    ru, rv = find(u), find(v)
    if ru != rv and (size[ru] < min_size or size[rv] < min_size):
      join(ru, rv)
  labels = np.array(parent, np.int64)
  while not np.array_equal(labels[labels], labels):
    labels = labels[labels]
  _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
  rank = np.argsort(np.argsort(first))
  return rank[inverse].reshape(height, width).astype(np.int32)
