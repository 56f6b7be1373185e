"""COCO box mAP: the 12 COCOeval statistics from COCO-format dicts, vectorized NumPy, no pycocotools.

`coco_evaluate` takes what pycocotools takes (a ground-truth dict with `images`, `annotations` (`bbox` xywh,
`area`, `iscrowd`) and `categories`, and a list of detections with `image_id`, `category_id`, `bbox` xywh and
`score`) and reproduces `COCOeval(..., 'bbox')` with its default parameters: IoU thresholds .50:.05:.95,
101 recall points, area ranges all/small/medium/large, at most 1/10/100 detections per image and class.

Matching rule (per image and class, per IoU threshold and area range, detections by decreasing score): a
detection takes the best-IoU ground truth that is not yet taken (crowd regions can be taken many times)
among the non-ignored ones, and only if there is none, among the ignored ones (crowd or outside the area
range); equal IoUs go to the later ground truth. Crowd IoU is intersection / detection area. Detections
matched to ignored ground truth, and unmatched detections outside the area range, are ignored.

Instead of pycocotools' per-image Python loops, image-class pairs are padded into chunks and matched
together, one detection rank at a time. `evaluate_with_ious` is that machinery for any IoU (the mask AP of
`detection_masks` uses it).
"""

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vision_jax.errors import UserError

STAT_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl')
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = np.array([[0, 1e10], [0, 32**2], [32**2, 96**2], [96**2, 1e10]], np.float64)
MAX_DETS = (1, 10, 100)
_CHUNK = 2048


def _column(records: Sequence[Mapping[str, Any]], key: str, default=None, dtype=np.float64) -> np.ndarray:
  if default is None:
    try:
      return np.array([r[key] for r in records], dtype)
    except KeyError:
      raise UserError(f'every record needs a {key!r} field: add it (COCO format).') from None
  return np.array([r.get(key, default) for r in records], dtype)


def _boxes(records, what: str) -> np.ndarray:
  b = np.array([r['bbox'] for r in records], np.float64) if records else np.zeros((0, 4))
  if b.ndim != 2 or b.shape[1] != 4:
    raise UserError(f'{what} bbox must be [x, y, width, height] lists; got array of shape {b.shape}.')
  return b


def overlap_ratio(inter: np.ndarray, dt_area: np.ndarray, gt_area: np.ndarray, crowd: np.ndarray) -> np.ndarray:
  """COCO IoU from intersections and areas (broadcast): inter / union, crowd union = detection area, 0 if no overlap."""
  union = np.where(crowd, dt_area, dt_area + gt_area - inter)
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.where(inter > 0, inter / union, 0.0)


def _iou_xywh(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
  """COCO box IoU `[..., D, 4]` x `[..., G, 4]` -> `[..., D, G]` (crowd: intersection / detection area)."""
  d = dt[..., :, None, :]
  g = gt[..., None, :, :]
  w = np.minimum(d[..., 0] + d[..., 2], g[..., 0] + g[..., 2]) - np.maximum(d[..., 0], g[..., 0])
  h = np.minimum(d[..., 1] + d[..., 3], g[..., 1] + g[..., 3]) - np.maximum(d[..., 1], g[..., 1])
  inter = np.where((w > 0) & (h > 0), w * h, 0.0)
  return overlap_ratio(inter, d[..., 2] * d[..., 3], g[..., 2] * g[..., 3], crowd[..., None, :])


def _last_argmax(x: np.ndarray) -> np.ndarray:
  """Index of the last maximum along the last axis."""
  return x.shape[-1] - 1 - np.argmax(x[..., ::-1], axis=-1)


def _pad(pair: np.ndarray, rank: np.ndarray, values: np.ndarray, num_pairs: int, width: int, fill):
  out = np.full((num_pairs, width) + values.shape[1:], fill, values.dtype)
  out[pair, rank] = values
  return out


def _ranks(sorted_pair: np.ndarray) -> np.ndarray:
  """Position of each element within its run of equal (sorted) pair ids."""
  if sorted_pair.size == 0:
    return sorted_pair
  starts = np.r_[0, np.flatnonzero(np.diff(sorted_pair)) + 1]
  return np.arange(sorted_pair.size) - np.repeat(starts, np.diff(np.r_[starts, sorted_pair.size]))


def _match_chunk(ious, dt_area, dt_valid, gt_area, gt_crowd, gt_valid):
  """Greedy matching for a chunk of pairs sorted by decreasing detection count, given their IoUs `[P, D, G]`.

  Returns dt_matched, dt_ignored `[P, A, T, D]` and gt_ignored `[P, A, G]`.
  """
  p, d = dt_valid.shape
  a, t = len(AREA_RANGES), len(IOU_THRESHOLDS)
  out_of_range = ((gt_area[:, None, :] < AREA_RANGES[None, :, 0, None]) |
                  (gt_area[:, None, :] > AREA_RANGES[None, :, 1, None]))
  gt_ig = gt_crowd[:, None, :] | out_of_range  # [P, A, G]
  thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, None, :, None]
  taken = np.zeros((p, a, t, gt_valid.shape[1]), bool)
  matched = np.zeros((p, a, t, d), bool)
  ignored = np.zeros((p, a, t, d), bool)
  ndet = dt_valid.sum(1)
  for r in range(d):
    n = int(np.sum(ndet > r))  # pairs are sorted by detection count: a prefix has an r-th detection
    if n == 0:
      break
    iou = ious[:n, r][:, None, None, :]
    cand = (gt_valid[:n, None, None, :] & (~taken[:n] | gt_crowd[:n, None, None, :]) & (iou >= thr))
    ig = gt_ig[:n, :, None, :]
    reg = cand & ~ig
    has_reg = reg.any(-1)
    m = np.where(has_reg, _last_argmax(np.where(reg, iou, -1.0)),
                 _last_argmax(np.where(cand & ig, iou, -1.0)))
    hit = cand.any(-1)
    matched[:n, :, :, r] = hit
    ignored[:n, :, :, r] = hit & np.take_along_axis(np.broadcast_to(ig, cand.shape), m[..., None], -1)[..., 0]
    rows = np.nonzero(hit)
    taken[:n][rows + (m[rows],)] = True
  dt_out = ((dt_area[:, None, :] < AREA_RANGES[None, :, 0, None]) |
            (dt_area[:, None, :] > AREA_RANGES[None, :, 1, None]))  # [P, A, D]
  ignored |= ~matched & dt_out[:, :, None, :]
  return matched, ignored, gt_ig & gt_valid[:, None, :]


def coco_evaluate(ground_truth: Mapping[str, Any], detections: Sequence[Mapping[str, Any]]) -> dict[str, float]:
  """COCO box AP/AR, equal to pycocotools' `COCOeval(gt, gt.loadRes(dets), 'bbox')` summarize() stats.

  Args:
    ground_truth: COCO dict with `images` (`id`), `annotations` (`image_id`, `category_id`, `bbox` xywh,
      `area`, `iscrowd`) and `categories` (`id`).
    detections: list of dicts with `image_id`, `category_id`, `bbox` xywh and `score`.

  Returns:
    dict of the 12 statistics AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (-1 where
    undefined, as in pycocotools).
  """
  for key in ('images', 'annotations', 'categories'):
    if key not in ground_truth:
      raise UserError(f'ground_truth has no {key!r}: pass a COCO-format dict with images, annotations and '
                      'categories.')
  img_ids = np.unique(_column(ground_truth['images'], 'id', dtype=np.int64))
  cat_ids = np.unique(_column(ground_truth['categories'], 'id', dtype=np.int64))
  anns = ground_truth['annotations']
  g_img = _column(anns, 'image_id', dtype=np.int64)
  g_cat = _column(anns, 'category_id', dtype=np.int64)
  g_box = _boxes(anns, 'annotation')
  g_area = _column(anns, 'area')
  g_crowd = _column(anns, 'iscrowd', default=0, dtype=np.int64).astype(bool)
  d_img = _column(detections, 'image_id', dtype=np.int64)
  d_cat = _column(detections, 'category_id', dtype=np.int64)
  d_box = _boxes(detections, 'detection')
  d_score = _column(detections, 'score')
  if not np.all(np.isin(d_img, img_ids)):
    raise UserError('detections refer to image ids missing from ground_truth["images"]: drop them or add '
                    'the images.')
  d_pad, g_pad = np.r_[d_box, np.zeros((1, 4))], np.r_[g_box, np.zeros((1, 4))]  # index -1: a zero box
  pair_ious = lambda d, g, crowd: _iou_xywh(d_pad[d], g_pad[g], crowd)
  return evaluate_with_ious(img_ids, cat_ids, (g_img, g_cat, g_area, g_crowd),
                            (d_img, d_cat, d_score, d_box[:, 2] * d_box[:, 3]), pair_ious)


def evaluate_with_ious(img_ids: np.ndarray, cat_ids: np.ndarray, gt: tuple[np.ndarray, ...],
                       dt: tuple[np.ndarray, ...], pair_ious: Callable[..., np.ndarray]) -> dict[str, float]:
  """The 12 COCO statistics of ground truth and detections given as columns, with IoUs from `pair_ious`.

  Args:
    img_ids: [I] sorted unique image ids.
    cat_ids: [K] sorted unique category ids.
    gt: (image_id [G], category_id [G], area [G], iscrowd [G] bool) of the ground truth.
    dt: (image_id [D], category_id [D], score [D], area [D]) of the detections.
    pair_ious: (dt_index [P, d] int, gt_index [P, g] int, gt_crowd [P, g] bool) -> IoU [P, d, g] float64 for P
      image-category pairs; indices point into the gt/dt columns (-1 in padding, whose IoUs are never read).

  Returns:
    The statistics as `coco_evaluate`.
  """
  g_img, g_cat, g_area, g_crowd = gt
  d_img, d_cat, d_score, d_area = dt
  num_img = len(img_ids)
  keep_g = np.isin(g_img, img_ids) & np.isin(g_cat, cat_ids)
  keep_d = np.isin(d_cat, cat_ids)
  g_key = np.searchsorted(cat_ids, g_cat) * num_img + np.searchsorted(img_ids, g_img)
  d_key = np.searchsorted(cat_ids, d_cat) * num_img + np.searchsorted(img_ids, d_img)
  g_key, d_key = np.where(keep_g, g_key, -1), np.where(keep_d, d_key, -1)
  keys = np.unique(np.r_[g_key[keep_g], d_key[keep_d]])
  num_pairs = len(keys)

  g_order = np.flatnonzero(keep_g)[np.argsort(g_key[keep_g], kind='stable')]
  g_pair = np.searchsorted(keys, g_key[g_order])
  g_rank = _ranks(g_pair)
  d_sel = np.flatnonzero(keep_d)
  d_order = d_sel[np.lexsort((-d_score[d_sel], d_key[d_sel]))]
  d_pair = np.searchsorted(keys, d_key[d_order])
  d_rank = _ranks(d_pair)
  top = d_rank < MAX_DETS[-1]
  d_order, d_pair, d_rank = d_order[top], d_pair[top], d_rank[top]

  n_gt = np.bincount(g_pair, minlength=num_pairs)
  n_dt = np.bincount(d_pair, minlength=num_pairs)
  a, t = len(AREA_RANGES), len(IOU_THRESHOLDS)
  # Per detection (in d_order): matched / ignored [A, T]; per pair: count of non-ignored gt [A].
  det_matched = np.zeros((len(d_order), a, t), bool)
  det_ignored = np.zeros((len(d_order), a, t), bool)
  pair_npig = np.zeros((num_pairs, a), np.int64)
  pair_sorted = np.argsort(-n_dt, kind='stable')
  det_start = np.r_[0, np.cumsum(n_dt)]
  gt_start = np.r_[0, np.cumsum(n_gt)]
  for c0 in range(0, num_pairs, _CHUNK):
    pairs = pair_sorted[c0:c0 + _CHUNK]
    pc = len(pairs)
    wd, wg = max(int(n_dt[pairs].max()), 1), max(int(n_gt[pairs].max()), 1)
    local = np.repeat(np.arange(pc), n_dt[pairs])
    drank = _ranks(local)
    dsel = det_start[pairs][local] + drank
    glocal = np.repeat(np.arange(pc), n_gt[pairs])
    grank = _ranks(glocal)
    gsel = g_order[gt_start[pairs][glocal] + grank]
    gt_crowd = _pad(glocal, grank, g_crowd[gsel], pc, wg, False)
    ious = pair_ious(_pad(local, drank, d_order[dsel], pc, wd, -1), _pad(glocal, grank, gsel, pc, wg, -1), gt_crowd)
    matched, ignored, gt_ig = _match_chunk(
        ious,
        _pad(local, drank, d_area[d_order[dsel]], pc, wd, 0.0),
        _pad(local, drank, np.ones(len(dsel), bool), pc, wd, False),
        _pad(glocal, grank, g_area[gsel], pc, wg, 0.0),
        gt_crowd,
        _pad(glocal, grank, np.ones(len(gsel), bool), pc, wg, False))
    det_matched[dsel] = matched[local, :, :, drank]
    det_ignored[dsel] = ignored[local, :, :, drank]
    valid_g = _pad(glocal, grank, np.ones(len(gsel), bool), pc, wg, False)
    pair_npig[pairs] = np.sum(valid_g[:, None, :] & ~gt_ig, axis=-1)

  precision, recall = _accumulate(keys // num_img, len(cat_ids), d_pair, d_rank, d_score[d_order],
                                  det_matched, det_ignored, pair_npig)
  return _summarize(precision, recall)


def _accumulate(pair_cat, num_cats, d_pair, d_rank, d_score, det_matched, det_ignored, pair_npig):
  """Precision `[T, R, K, A, M]` and recall `[T, K, A, M]` as COCOeval.accumulate (-1 where no gt)."""
  t, r, a, m = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(AREA_RANGES), len(MAX_DETS)
  precision = -np.ones((t, r, num_cats, a, m))
  recall = -np.ones((t, num_cats, a, m))
  d_cat = pair_cat[d_pair]  # detections are in (category, image, rank) order
  cat_start = np.searchsorted(d_cat, np.arange(num_cats + 1))
  npig = np.zeros((num_cats, a), np.int64)
  np.add.at(npig, pair_cat, pair_npig)
  for k in range(num_cats):
    sl = slice(cat_start[k], cat_start[k + 1])
    for mi, max_det in enumerate(MAX_DETS):
      sel = np.flatnonzero(d_rank[sl] < max_det) + cat_start[k]
      order = sel[np.argsort(-d_score[sel], kind='mergesort')]
      for ai in range(a):
        if npig[k, ai] == 0:
          continue
        mt = det_matched[order, ai].T  # [T, n]
        ig = det_ignored[order, ai].T
        tp = np.cumsum(mt & ~ig, axis=1, dtype=np.float64)
        fp = np.cumsum(~mt & ~ig, axis=1, dtype=np.float64)
        nd = tp.shape[1]
        if nd == 0:
          recall[:, k, ai, mi] = 0
          precision[:, :, k, ai, mi] = 0
          continue
        rc = tp / npig[k, ai]
        pr = tp / (fp + tp + np.spacing(1))
        recall[:, k, ai, mi] = rc[:, -1]
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for ti in range(t):
          inds = np.searchsorted(rc[ti], RECALL_THRESHOLDS, side='left')
          ok = inds < nd
          precision[ti, :, k, ai, mi] = np.where(ok, pr[ti, np.minimum(inds, nd - 1)], 0.0)
  return precision, recall


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
  def mean(s):
    s = s[s > -1]
    return float(np.mean(s)) if s.size else -1.0

  ap = lambda ai, t=None: mean(precision[:, :, :, ai, 2] if t is None else precision[t, :, :, ai, 2])
  ar = lambda ai, mi: mean(recall[:, :, ai, mi])
  values = (ap(0), ap(0, 0), ap(0, 5), ap(1), ap(2), ap(3), ar(0, 0), ar(0, 1), ar(0, 2), ar(1, 2), ar(2, 2),
            ar(3, 2))
  return dict(zip(STAT_NAMES, values))
