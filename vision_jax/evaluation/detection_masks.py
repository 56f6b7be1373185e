"""COCO mask AP: the 12 `COCOeval(..., 'segm')` statistics from per-image binary masks, NumPy, no pycocotools.

Matching, accumulation and the summary are `detection_coco`'s; only the IoU differs. As pycocotools' `maskUtils.iou`,
the IoU of a detection and a ground-truth mask is intersection / union in pixels (intersection / detection area
for a crowd region, 0 without overlap), and the small/medium/large ranges apply to the masks' pixel areas (the
area `loadRes` gives detections, and the area COCO stores for a ground-truth segmentation).

Intersections are counted per image for the detection/ground-truth pairs of one class whose masks' extents
overlap (the only pairs the matching reads), each within the overlap of the two extents.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from vision_jax.errors import DataError
from vision_jax.evaluation.detection_coco import evaluate_with_ious, overlap_ratio

def _binary_masks(record: Mapping[str, Any], what: str, index: int) -> np.ndarray:
  if "masks" not in record:
    raise DataError(f"{what} record {index} has no 'masks': give each image a [K, H, W] bool 'masks' array")
  masks = np.asarray(record["masks"])
  if masks.ndim != 3:
    raise DataError(f"{what} record {index}: 'masks' has shape {masks.shape}; it must be [K, H, W]")
  if np.issubdtype(masks.dtype, np.floating):
    raise DataError(f"{what} record {index}: 'masks' are {masks.dtype}; binarise them first (e.g. probs >= 0.5)")
  return masks.astype(bool)


def _column(record: Mapping[str, Any], key: str, count: int, what: str, index: int, default=None) -> np.ndarray:
  if key not in record:
    if default is None:
      raise DataError(f"{what} record {index} has no {key!r}: give one value per mask")
    return np.full(count, default)
  values = np.asarray(record[key]).reshape(-1)
  if len(values) != count:
    raise DataError(f"{what} record {index}: {len(values)} {key} for {count} masks; give one per mask")
  return values


def _extents(masks: np.ndarray) -> np.ndarray:
  """[K, H, W] bool -> [K, 4] first row, last row + 1, first column, last column + 1 (zeros for empty masks)."""
  out = np.zeros((len(masks), 4), np.int64)
  for axis, at in ((2, 0), (1, 2)):
    hit = masks.any(axis)  # [K, H] rows (or [K, W] columns) with a pixel
    size = hit.shape[1]
    out[:, at] = np.where(hit.any(1), np.argmax(hit, 1), 0)
    out[:, at + 1] = np.where(hit.any(1), size - np.argmax(hit[:, ::-1], 1), 0)
  return out


def _intersections(dt: np.ndarray, gt: np.ndarray, candidates: np.ndarray) -> np.ndarray:
  """Pixel counts of dt & gt for the candidate pairs whose extents overlap (0 elsewhere).

  Args:
    dt: [D, H, W] bool; gt: [G, H, W] bool; candidates: [D, G] bool (pairs that can be matched: same class).

  Returns:
    [D, G] float64.
  """
  inter = np.zeros((len(dt), len(gt)))
  if not inter.size:
    return inter
  de, ge = _extents(dt)[:, None, :], _extents(gt)[None, :, :]
  y0, y1 = np.maximum(de[..., 0], ge[..., 0]), np.minimum(de[..., 1], ge[..., 1])
  x0, x1 = np.maximum(de[..., 2], ge[..., 2]), np.minimum(de[..., 3], ge[..., 3])
  for i, j in zip(*np.nonzero(candidates & (y1 > y0) & (x1 > x0))):
    window = (slice(y0[i, j], y1[i, j]), slice(x0[i, j], x1[i, j]))
    inter[i, j] = np.count_nonzero(dt[i][window] & gt[j][window])
  return inter


def coco_mask_evaluate(ground_truth: Sequence[Mapping[str, Any]],
                       detections: Sequence[Mapping[str, Any]]) -> dict[str, float]:
  """COCO mask AP/AR, equal to pycocotools' `COCOeval(gt, gt.loadRes(dets), 'segm')` summarize() stats.

  Args:
    ground_truth: one record per image: `masks` [K, H, W] bool, `labels` [K] int (category ids) and optionally
      `iscrowd` [K] bool.
    detections: one record per image (same order and length): `masks` [D, H, W] bool, `labels` [D] int and
      `scores` [D] float.

  Returns:
    dict of the 12 statistics AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (-1 where undefined),
    the categories being every label that occurs.

  Raises:
    DataError: records of different counts, missing fields, shapes that disagree, or non-binary masks.
  """
  if len(ground_truth) != len(detections):
    raise DataError(f"{len(ground_truth)} ground-truth records but {len(detections)} detection records: "
                    "give one of each per image, in the same order")
  gt_cols: list[tuple[np.ndarray, ...]] = []  # per image: image, category, area, crowd, index in the image
  dt_cols: list[tuple[np.ndarray, ...]] = []  # per image: image, category, score, area, index in the image
  blocks = []  # per image: the [D, G] intersections, flattened
  for i, (truth, found) in enumerate(zip(ground_truth, detections)):
    g, d = _binary_masks(truth, "ground-truth", i), _binary_masks(found, "detection", i)
    if len(g) and len(d) and g.shape[1:] != d.shape[1:]:
      raise DataError(f"image {i}: detection masks are {d.shape[1]}x{d.shape[2]} but ground-truth masks "
                      f"{g.shape[1]}x{g.shape[2]}; paste detections into the full image first")
    g_labels = _column(truth, "labels", len(g), "ground-truth", i)
    d_labels = _column(found, "labels", len(d), "detection", i)
    gt_cols.append((np.full(len(g), i), g_labels, np.count_nonzero(g, axis=(1, 2)),
                    _column(truth, "iscrowd", len(g), "ground-truth", i, False), np.arange(len(g))))
    dt_cols.append((np.full(len(d), i), d_labels, _column(found, "scores", len(d), "detection", i),
                    np.count_nonzero(d, axis=(1, 2)), np.arange(len(d))))
    blocks.append(_intersections(d, g, d_labels[:, None] == g_labels[None, :]).reshape(-1))
  join = lambda cols, k, dtype: np.concatenate([c[k] for c in cols] + [np.zeros(0)]).astype(dtype)
  g_img, g_cat, g_area, g_crowd, g_local = (join(gt_cols, k, t) for k, t in
                                            enumerate((np.int64, np.int64, np.float64, bool, np.int64)))
  d_img, d_cat, d_score, d_area, d_local = (join(dt_cols, k, t) for k, t in
                                            enumerate((np.int64, np.int64, np.float64, np.float64, np.int64)))
  table = np.concatenate(blocks + [np.zeros(1)])
  num_gt = np.asarray([len(c[0]) for c in gt_cols] + [0], np.int64)
  starts = np.r_[0, np.cumsum([len(b) for b in blocks])].astype(np.int64)
  # A trailing 0 on these columns: the padding index -1 reads it (and its IoU is masked out below).
  pad = lambda x: np.r_[x, 0].astype(x.dtype)
  d_img_, d_local_, g_local_, d_area_, g_area_ = pad(d_img), pad(d_local), pad(g_local), pad(d_area), pad(g_area)

  def pair_ious(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    img = d_img_[d][:, :, None]
    flat = starts[img] + d_local_[d][:, :, None] * num_gt[img] + g_local_[g][:, None, :]
    valid = (d >= 0)[:, :, None] & (g >= 0)[:, None, :]
    inter = np.where(valid, table[np.clip(flat, 0, len(table) - 1)], 0.0)
    return overlap_ratio(inter, d_area_[d][:, :, None], g_area_[g][:, None, :], crowd[:, None, :])

  return evaluate_with_ious(np.arange(len(ground_truth)), np.unique(np.r_[g_cat, d_cat]),
                            (g_img, g_cat, g_area, g_crowd), (d_img, d_cat, d_score, d_area), pair_ious)
