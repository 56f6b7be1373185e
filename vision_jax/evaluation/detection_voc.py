"""PASCAL VOC detection AP: the VOC 2007 11-point AP and the all-point (area) AP, honouring `difficult`.

Per class, detections of all images are ranked by decreasing score (stable). A detection's candidate is the
ground truth of the same image and class with the highest IoU (difficult ones included); if that IoU is
> `iou_threshold` the detection is a true positive the first time that ground truth is hit, a false positive
after that, and neither when the ground truth is difficult; otherwise it is a false positive. Recall is over
non-difficult ground truth. As in the VOC devkit, widths and heights count `pixel_offset` (1: inclusive
integer pixel coordinates) extra pixels.
"""

from typing import Any, Mapping, Sequence

import numpy as np

from vision_jax.errors import UserError


def _as_boxes(x, what: str) -> np.ndarray:
  b = np.asarray(x, np.float64).reshape(-1, 4) if np.size(x) else np.zeros((0, 4))
  if np.size(x) % 4:
    raise UserError(f'{what} boxes must have shape [N, 4] (x1, y1, x2, y2); got {np.shape(x)}.')
  return b


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool) -> float:
  """AP from a precision/recall curve: 11-point (VOC 2007) or area under the monotone envelope."""
  if use_07_metric:
    return float(np.mean([np.max(precision[recall >= t], initial=0.0) for t in np.linspace(0, 1, 11)]))
  mrec = np.r_[0.0, recall, 1.0]
  mpre = np.r_[0.0, precision, 0.0]
  mpre = np.maximum.accumulate(mpre[::-1])[::-1]
  i = np.flatnonzero(mrec[1:] != mrec[:-1])
  return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _iou(dets: np.ndarray, gts: np.ndarray, offset: float) -> np.ndarray:
  """`[D, 4]` x `[D, G, 4]` -> `[D, G]` IoU with the `offset` pixel convention."""
  d = dets[:, None, :]
  w = np.maximum(np.minimum(d[..., 2], gts[..., 2]) - np.maximum(d[..., 0], gts[..., 0]) + offset, 0.0)
  h = np.maximum(np.minimum(d[..., 3], gts[..., 3]) - np.maximum(d[..., 1], gts[..., 1]) + offset, 0.0)
  inter = w * h
  area = lambda b: (b[..., 2] - b[..., 0] + offset) * (b[..., 3] - b[..., 1] + offset)
  return inter / (area(d) + area(gts) - inter)


def voc_evaluate(ground_truth: Sequence[Mapping[str, Any]], detections: Sequence[Mapping[str, Any]],
                 iou_threshold: float = 0.5, pixel_offset: float = 1.0) -> dict[str, Any]:
  """PASCAL VOC mAP over images.

  Args:
    ground_truth: per image, a dict with `boxes` `[G, 4]` xyxy, `labels` `[G]` and optionally `difficult`
      `[G]` bool.
    detections: per image (same order and length), a dict with `boxes` `[D, 4]`, `scores` `[D]`, `labels` `[D]`.
    iou_threshold: IoU a detection must exceed.
    pixel_offset: added to widths and heights (1 in the VOC devkit, 0 for continuous coordinates).

  Returns:
    dict with `mAP` (all-point), `mAP_07` (11-point), and per-class dicts `AP`, `AP_07`, keyed by label;
    classes without non-difficult ground truth are left out.
  """
  if len(ground_truth) != len(detections):
    raise UserError(f'voc_evaluate got {len(ground_truth)} ground-truth images and {len(detections)} detection '
                    'entries: pass one detections dict per image, in the same order.')
  g_img, g_box, g_lab, g_diff, d_img, d_box, d_lab, d_score = [], [], [], [], [], [], [], []
  for i, (gt, dt) in enumerate(zip(ground_truth, detections)):
    b = _as_boxes(gt['boxes'], 'ground-truth')
    g_box.append(b)
    g_img.append(np.full(len(b), i))
    g_lab.append(np.asarray(gt['labels'], np.int64).reshape(-1))
    g_diff.append(np.asarray(gt.get('difficult', np.zeros(len(b))), bool).reshape(-1))
    b = _as_boxes(dt['boxes'], 'detection')
    d_box.append(b)
    d_img.append(np.full(len(b), i))
    d_lab.append(np.asarray(dt['labels'], np.int64).reshape(-1))
    d_score.append(np.asarray(dt['scores'], np.float64).reshape(-1))
  g_img, g_box, g_lab, g_diff = map(np.concatenate, (g_img, g_box, g_lab, g_diff))
  d_img, d_box, d_lab, d_score = map(np.concatenate, (d_img, d_box, d_lab, d_score))
  if not (len(g_lab) == len(g_box) == len(g_diff) and len(d_lab) == len(d_box) == len(d_score)):
    raise UserError('each image needs one label (and difficult flag) per box and one score per detection.')

  ap, ap07 = {}, {}
  for c in np.unique(g_lab):
    gsel = np.flatnonzero(g_lab == c)
    npos = int(np.sum(~g_diff[gsel]))
    if npos == 0:
      continue
    dsel = np.flatnonzero(d_lab == c)
    dsel = dsel[np.argsort(-d_score[dsel], kind='stable')]
    # Ground truth of class c grouped by image, padded to [num_images, G, 4].
    order = gsel[np.argsort(g_img[gsel], kind='stable')]
    counts = np.bincount(g_img[order], minlength=len(ground_truth))
    starts = np.r_[0, np.cumsum(counts)]
    width = max(int(counts.max()), 1)
    rank = np.arange(len(order)) - starts[g_img[order]]
    pad_box = np.zeros((len(ground_truth), width, 4))
    pad_box[g_img[order], rank] = g_box[order]
    pad_ok = np.zeros((len(ground_truth), width), bool)
    pad_ok[g_img[order], rank] = True
    img = d_img[dsel]
    iou = np.where(pad_ok[img], _iou(d_box[dsel], pad_box[img], pixel_offset), -np.inf)
    jmax = np.argmax(iou, axis=1)
    hit = np.max(iou, axis=1, initial=-np.inf) > iou_threshold
    gt_index = order[np.minimum(starts[img] + jmax, len(order) - 1)] if len(order) else jmax
    difficult = hit & g_diff[gt_index]
    counted = hit & ~difficult
    first = np.zeros(len(dsel), bool)
    _, first_pos = np.unique(np.where(counted, gt_index, -1), return_index=True)
    first[first_pos] = True
    tp = counted & first
    fp = ~hit | (counted & ~first)
    tp_sum, fp_sum = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)
    recall = tp_sum / npos
    precision = tp_sum / np.maximum(tp_sum + fp_sum, np.finfo(np.float64).eps)
    ap[int(c)] = voc_ap(recall, precision, use_07_metric=False)
    ap07[int(c)] = voc_ap(recall, precision, use_07_metric=True)
  mean = lambda d: float(np.mean(list(d.values()))) if d else float('nan')
  return {'mAP': mean(ap), 'mAP_07': mean(ap07), 'AP': ap, 'AP_07': ap07}
