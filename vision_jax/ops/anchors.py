"""Anchor (prior, default) boxes: the lectures' per-pixel scheme, Faster R-CNN grids, SSD default boxes and
YOLO anchors from k-means with the 1 - IoU distance.

All generators return xyxy boxes `[L * A, 4]`, location-major (all anchors of location 0, then location 1, ...),
locations in row-major order over the feature map.
"""

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import UserError


def _centres(feature_size: tuple[int, int], step_y: float, step_x: float, offset: float) -> jax.Array:
  """`[fh * fw, 2]` (x, y) centres of the feature-map cells, row-major."""
  fh, fw = feature_size
  ys = (jnp.arange(fh, dtype=jnp.float32) + offset) * step_y
  xs = (jnp.arange(fw, dtype=jnp.float32) + offset) * step_x
  yy, xx = jnp.meshgrid(ys, xs, indexing='ij')
  return jnp.stack([xx.reshape(-1), yy.reshape(-1)], axis=-1)


def _place(centres: jax.Array, wh: jax.Array) -> jax.Array:
  """Anchors of widths/heights `wh [A, 2]` at `centres [L, 2]` -> `[L * A, 4]` xyxy."""
  c = centres[:, None, :]
  half = wh[None, :, :] / 2
  return jnp.concatenate([c - half, c + half], axis=-1).reshape(-1, 4)


def multibox_prior(image_size: tuple[int, int], sizes: Sequence[float], ratios: Sequence[float],
                   feature_size: tuple[int, int] | None = None) -> jax.Array:
  """The lectures' per-pixel anchors: n sizes and m ratios give n + m - 1 boxes per location.

  The boxes are (s_1, r_j) for every ratio and (s_i, r_1) for i > 1, with width w * s * sqrt(r) and height
  h * s / sqrt(r) for an image of width w and height h, centred on each feature-map pixel.

  Args:
    image_size: (h, w) of the image in pixels.
    sizes: s_1..s_n, fractions of the image size in (0, 1].
    ratios: r_1..r_m, width/height aspect ratios.
    feature_size: (fh, fw) of the feature map; the image size (one anchor set per pixel) if None.

  Returns:
    `[fh * fw * (n + m - 1), 4]` xyxy boxes in image pixels.
  """
  if not sizes or not ratios:
    raise UserError('multibox_prior needs at least one size and one ratio: pass sizes=[...], ratios=[...].')
  h, w = image_size
  fh, fw = feature_size or image_size
  pairs = [(sizes[0], r) for r in ratios] + [(s, ratios[0]) for s in sizes[1:]]
  wh = jnp.array([[w * s * math.sqrt(r), h * s / math.sqrt(r)] for s, r in pairs], jnp.float32)
  return _place(_centres((fh, fw), h / fh, w / fw, 0.5), wh)


def grid_anchors(feature_size: tuple[int, int], stride: int | tuple[int, int], sizes: Sequence[float],
                 ratios: Sequence[float] = (0.5, 1.0, 2.0), offset: float = 0.0) -> jax.Array:
  """Faster R-CNN anchors: sizes x ratios at every feature-map location (Ren et al., 2015).

  For ratio r = height / width and size s, the anchor has area s^2: width s / sqrt(r), height s * sqrt(r)
  (torchvision's AnchorGenerator order: ratio-major, then size; its base anchors are also rounded, these
  are not).

  Args:
    feature_size: (fh, fw) of the feature map.
    stride: pixels between locations, an int or (stride_y, stride_x).
    sizes: anchor sizes (square roots of the areas) in pixels.
    ratios: height/width aspect ratios.
    offset: centre of location (i, j) is ((j + offset) * stride_x, (i + offset) * stride_y); torchvision
      uses 0, many implementations 0.5.

  Returns:
    `[fh * fw * len(ratios) * len(sizes), 4]` xyxy boxes in image pixels.
  """
  sy, sx = (stride, stride) if isinstance(stride, (int, float)) else stride
  wh = [[s / math.sqrt(r), s * math.sqrt(r)] for r in ratios for s in sizes]
  return _place(_centres(feature_size, sy, sx, offset), jnp.array(wh, jnp.float32))


def ssd_default_boxes(feature_sizes: Sequence[int], aspect_ratios: Sequence[Sequence[float]],
                      min_scale: float = 0.2, max_scale: float = 0.9, clip: bool = True) -> jax.Array:
  """SSD default boxes for several square feature maps (Liu et al., 2016, sec. 2.2).

  Scale of map k (of m): s_k = s_min + (s_max - s_min) (k - 1) / (m - 1). Each location gets, for every ratio
  a, width s_k sqrt(a) and height s_k / sqrt(a), plus one extra box of scale sqrt(s_k s_{k+1}) for a = 1.

  Args:
    feature_sizes: side of each square feature map, largest first (e.g. [38, 19, 10, 5, 3, 1]).
    aspect_ratios: per map, the ratios besides 1 to add with their reciprocals (e.g. [[2], [2, 3], ...]).
    min_scale: s_min.
    max_scale: s_max.
    clip: clip the boxes to [0, 1].

  Returns:
    `[sum_k f_k^2 * (2 + 2 * len(aspect_ratios[k])), 4]` xyxy boxes in normalized [0, 1] image coordinates.
  """
  m = len(feature_sizes)
  if len(aspect_ratios) != m:
    raise UserError(f'ssd_default_boxes got {m} feature maps but {len(aspect_ratios)} aspect-ratio lists: '
                    'pass one list per feature map.')
  scales = [min_scale + (max_scale - min_scale) * k / max(m - 1, 1) for k in range(m)] + [1.0]
  out = []
  for k, f in enumerate(feature_sizes):
    s, s_next = scales[k], scales[k + 1]
    wh = [[s, s], [math.sqrt(s * s_next)] * 2]
    for a in aspect_ratios[k]:
      wh += [[s * math.sqrt(a), s / math.sqrt(a)], [s / math.sqrt(a), s * math.sqrt(a)]]
    out.append(_place(_centres((f, f), 1.0 / f, 1.0 / f, 0.5), jnp.array(wh, jnp.float32)))
  boxes = jnp.concatenate(out, axis=0)
  return jnp.clip(boxes, 0.0, 1.0) if clip else boxes


def wh_iou(wh1: jax.Array, wh2: jax.Array) -> jax.Array:
  """IoU of boxes given only by size, aligned at a common centre: `[N, 2]`, `[K, 2]` -> `[N, K]`."""
  inter = (jnp.minimum(wh1[:, None, 0], wh2[None, :, 0]) * jnp.minimum(wh1[:, None, 1], wh2[None, :, 1]))
  area1 = wh1[:, 0] * wh1[:, 1]
  area2 = wh2[:, 0] * wh2[:, 1]
  return inter / (area1[:, None] + area2[None, :] - inter)


def kmeans_anchors(box_wh: jax.Array, k: int, key: jax.Array, num_iters: int = 100) -> jax.Array:
  """YOLO v2 anchors: k-means on box sizes with the distance 1 - IoU (Redmon & Farhadi, 2017, sec. 2).

  Lloyd iterations from k distinct boxes drawn at random; a centroid is the mean size of its members and
  an empty cluster keeps its centroid.

  Args:
    box_wh: `[N, 2]` widths and heights of the dataset's boxes (N >= k).
    k: number of anchors.
    key: PRNG key for the initial centroids.
    num_iters: Lloyd iterations.

  Returns:
    `[k, 2]` anchor sizes, sorted by area.
  """
  box_wh = jnp.asarray(box_wh, jnp.float32)
  if box_wh.ndim != 2 or box_wh.shape[1] != 2:
    raise UserError(f'kmeans_anchors needs box sizes of shape [N, 2]; got {box_wh.shape}: pass '
                    'boxes[:, 2:] - boxes[:, :2].')
  if box_wh.shape[0] < k:
    raise UserError(f'kmeans_anchors needs at least k={k} boxes; got {box_wh.shape[0]}: lower k.')
  init = box_wh[jax.random.choice(key, box_wh.shape[0], (k,), replace=False)]

  def step(_, centroids):
    assign = jnp.argmax(wh_iou(box_wh, centroids), axis=1)
    onehot = jax.nn.one_hot(assign, k, dtype=box_wh.dtype)
    counts = onehot.sum(0)
    means = (onehot.T @ box_wh) / jnp.maximum(counts, 1)[:, None]
    return jnp.where(counts[:, None] > 0, means, centroids)

  centroids = jax.lax.fori_loop(0, num_iters, step, init)
  return centroids[jnp.argsort(centroids[:, 0] * centroids[:, 1])]


def mean_best_iou(box_wh: np.ndarray | jax.Array, anchors_wh: np.ndarray | jax.Array) -> jax.Array:
  """Average over boxes of the best anchor IoU (YOLO v2's 'Avg IOU' quality of an anchor set); scalar."""
  return jnp.mean(jnp.max(wh_iou(jnp.asarray(box_wh), jnp.asarray(anchors_wh)), axis=1))


def rcnn_base_anchors(sizes: Sequence[float], ratios: Sequence[float]) -> np.ndarray:
  """torchvision's `AnchorGenerator.generate_anchors`: zero-centred, rounded cell anchors `[R * S, 4]`.

  Ratio r = height / width; for size s the anchor is s / sqrt(r) wide and s * sqrt(r) high, ratio-major
  then size, and the half extents are rounded to integers (half to even), all in float32 as torchvision does.
  """
  scales = np.asarray(sizes, np.float32)
  h_ratios = np.sqrt(np.asarray(ratios, np.float32))
  w_ratios = np.float32(1) / h_ratios
  ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
  hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
  return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / np.float32(2))


def rcnn_anchors(image_size_padded: tuple[int, int], feature_sizes: Sequence[tuple[int, int]],
                 sizes_per_level: Sequence[Sequence[float]],
                 ratios_per_level: Sequence[Sequence[float]]) -> jax.Array:
  """Faster R-CNN anchors for every level, equal to torchvision's `AnchorGenerator` output.

  Level l has stride (H // fh, W // fw) for the padded batch size (H, W) and its feature size (fh, fw); its
  anchors are the rounded cell anchors (`rcnn_base_anchors`) shifted to (j * stride_x, i * stride_y) for
  every location (i, j) in row-major order, location-major; levels are concatenated in order. Computed on the
  host (the shapes are static), so it costs nothing under jit.

  Args:
    image_size_padded: (H, W) of the padded batch (after `rcnn_transform`).
    feature_sizes: (fh, fw) per level.
    sizes_per_level: anchor sizes per level, e.g. ((32,), (64,), (128,), (256,), (512,)) for the FPN.
    ratios_per_level: height/width ratios per level, e.g. ((0.5, 1.0, 2.0),) * 5.

  Returns:
    `[sum_l fh_l * fw_l * A_l, 4]` float32 xyxy anchors in padded-image pixels.
  """
  if not (len(feature_sizes) == len(sizes_per_level) == len(ratios_per_level)):
    raise UserError(f'rcnn_anchors got {len(feature_sizes)} feature maps, {len(sizes_per_level)} size tuples and '
                    f'{len(ratios_per_level)} ratio tuples: pass one of each per level.')
  h, w = (int(v) for v in image_size_padded)
  levels = []
  for (fh, fw), sizes, ratios in zip(feature_sizes, sizes_per_level, ratios_per_level):
    base = rcnn_base_anchors(sizes, ratios)
    shift_x = np.arange(fw, dtype=np.int64) * (w // fw)
    shift_y = np.arange(fh, dtype=np.int64) * (h // fh)
    yy, xx = np.meshgrid(shift_y, shift_x, indexing='ij')
    shifts = np.stack([xx.reshape(-1), yy.reshape(-1)] * 2, axis=1).astype(np.float32)
    levels.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
  return jnp.asarray(np.concatenate(levels, axis=0))


def rcnn_anchors_per_level(feature_sizes: Sequence[tuple[int, int]],
                           sizes_per_level: Sequence[Sequence[float]],
                           ratios_per_level: Sequence[Sequence[float]]) -> tuple[int, ...]:
  """Number of anchors of each level of `rcnn_anchors` (fh * fw * sizes * ratios), for `filter_proposals`."""
  return tuple(int(fh * fw * len(s) * len(r))
               for (fh, fw), s, r in zip(feature_sizes, sizes_per_level, ratios_per_level))
