"""voc_evaluate against a plain per-detection loop in the VOC devkit's manner, and hand-computed cases."""

import numpy as np
import pytest

from vision_jax.errors import UserError
from vision_jax.evaluation import voc_ap
from vision_jax.evaluation import voc_evaluate


def devkit_loop(gts, dets, cls, thr=0.5):
  """One class, detection by detection, as the VOC devkit's voc_eval (inclusive-pixel IoU)."""
  recs = {i: (np.asarray(g['boxes'], float).reshape(-1, 4)[np.asarray(g['labels']) == cls],
              np.asarray(g.get('difficult', np.zeros(len(g['labels']))), bool)[np.asarray(g['labels']) == cls])
          for i, g in enumerate(gts)}
  npos = sum(int((~d).sum()) for _, d in recs.values())
  found = {i: np.zeros(len(b), bool) for i, (b, _) in recs.items()}
  flat = [(s, i, b) for i, d in enumerate(dets) for s, b, l in zip(d['scores'], d['boxes'], d['labels'])
          if l == cls]
  flat.sort(key=lambda x: -x[0])
  tp, fp = [], []
  for _, i, bb in flat:
    bbgt, diff = recs[i]
    ovmax, jmax = -np.inf, -1
    for j, g in enumerate(bbgt):
      iw = max(min(bb[2], g[2]) - max(bb[0], g[0]) + 1, 0)
      ih = max(min(bb[3], g[3]) - max(bb[1], g[1]) + 1, 0)
      inter = iw * ih
      uni = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - inter
      if inter / uni > ovmax:
        ovmax, jmax = inter / uni, j
    if ovmax > thr:
      if diff[jmax]:
        continue
      if not found[i][jmax]:
        found[i][jmax] = True
        tp.append(1), fp.append(0)
      else:
        tp.append(0), fp.append(1)
    else:
      tp.append(0), fp.append(1)
  tp, fp = np.cumsum(tp, dtype=float), np.cumsum(fp, dtype=float)
  rec = tp / npos
  prec = tp / np.maximum(tp + fp, np.finfo(float).eps)
  ap07 = sum((max(prec[rec >= t]) if np.any(rec >= t) else 0) for t in np.arange(0, 1.1, 0.1)) / 11
  area, prev_r = 0.0, 0.0
  for k in range(len(rec)):  # area under the monotone envelope, step by step
    if rec[k] > prev_r:
      area += (rec[k] - prev_r) * max(prec[k:])
      prev_r = rec[k]
  return area, ap07


def random_voc(seed, num_images=30, num_classes=4):
  rng = np.random.default_rng(seed)
  gts, dets = [], []
  for _ in range(num_images):
    n = rng.integers(0, 6)
    xy = rng.integers(0, 200, (n, 2))
    boxes = np.concatenate([xy, xy + rng.integers(5, 80, (n, 2))], 1).astype(float)
    labels = rng.integers(0, num_classes, n)
    gts.append({'boxes': boxes, 'labels': labels, 'difficult': rng.uniform(size=n) < 0.2})
    m = rng.integers(0, 10)
    pick = rng.integers(0, max(n, 1), m)
    db = boxes[pick] + rng.normal(0, 6, (m, 4)) if n else rng.uniform(0, 200, (m, 4))
    db[:, 2:] = np.maximum(db[:, 2:], db[:, :2] + 1)
    dl = np.where(rng.uniform(size=m) < 0.85, labels[pick] if n else 0, rng.integers(0, num_classes, m))
    dets.append({'boxes': db, 'labels': dl, 'scores': rng.uniform(size=m)})
  return gts, dets


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_devkit_loop(seed):
  gts, dets = random_voc(seed)
  out = voc_evaluate(gts, dets)
  for c, ap in out['AP'].items():
    area, ap07 = devkit_loop(gts, dets, c)
    assert ap == pytest.approx(area, abs=1e-12)
    assert out['AP_07'][c] == pytest.approx(ap07, abs=1e-12)
  assert out['mAP'] == pytest.approx(np.mean(list(out['AP'].values())))


def test_hand_computed_and_difficult():
  gts = [{'boxes': [[0, 0, 9, 9], [20, 20, 29, 29]], 'labels': [1, 1], 'difficult': [False, True]},
         {'boxes': [[0, 0, 9, 9]], 'labels': [1]}]
  dets = [{'boxes': [[0, 0, 9, 9], [0, 0, 9, 9], [20, 20, 29, 29], [50, 50, 59, 59]],
           'scores': [0.9, 0.8, 0.7, 0.6], 'labels': [1, 1, 1, 1]},
          {'boxes': [[0, 0, 9, 9]], 'scores': [0.5], 'labels': [1]}]
  # Ranked: tp, fp (duplicate), ignored (difficult), fp, tp -> recall 1/2, 1/2, 1/2, 1; precision 1, 1/2, 1/3, 1/2.
  out = voc_evaluate(gts, dets)
  assert out['AP'][1] == pytest.approx(0.5 * 1 + 0.5 * 0.5)
  assert out['AP_07'][1] == pytest.approx((6 * 1 + 5 * 0.5) / 11)


def test_voc_ap_and_errors():
  assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5]), use_07_metric=False) == pytest.approx(0.75)
  with pytest.raises(UserError, match='same order'):
    voc_evaluate([{'boxes': [], 'labels': []}], [])
