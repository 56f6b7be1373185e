"""coco_evaluate against pycocotools' COCOeval on randomized datasets (crowds, empty images, score ties)."""

import numpy as np
import pytest

from vision_jax.errors import UserError
from vision_jax.evaluation import coco_evaluate
from vision_jax.evaluation.detection_coco import STAT_NAMES
from vision_jax.bench.ops import pycocotools_stats

pytest.importorskip('pycocotools')


def random_coco(seed: int, num_images: int, num_cats: int, max_gt: int, max_dets: int):
  """A COCO-format dataset and detections: unsorted ids, crowds, empty images, rounded (tied) scores."""
  rng = np.random.default_rng(seed)
  images = [{'id': int(i)} for i in rng.permutation(np.arange(1, num_images + 1) * 3)]
  cats = [{'id': int(c)} for c in rng.permutation(np.arange(1, num_cats + 1) * 2)]
  anns, dets = [], []
  for im in images:
    own = []
    for _ in range(rng.integers(0, max_gt + 1)):
      xy, wh = rng.uniform(0, 400, 2), np.exp(rng.uniform(np.log(4), np.log(250), 2))
      own.append({'id': len(anns) + 1, 'image_id': im['id'], 'category_id': cats[rng.integers(num_cats)]['id'],
                  'bbox': [*map(float, xy), *map(float, wh)], 'area': float(wh[0] * wh[1] * rng.uniform(0.5, 1)),
                  'iscrowd': int(rng.uniform() < 0.1)})
      anns.append(own[-1])
    if own and rng.uniform() < 0.3:  # an exact duplicate ground truth: IoU ties
      anns.append(dict(own[0], id=len(anns) + 1))
    for _ in range(rng.integers(0, max_dets + 1)):
      if own and rng.uniform() < 0.7:
        g = own[rng.integers(len(own))]
        b = np.array(g['bbox']) + rng.normal(0, 5, 4)
        b[2:] = np.abs(b[2:]) + 1
        c = g['category_id'] if rng.uniform() < 0.9 else cats[rng.integers(num_cats)]['id']
      else:
        b = np.r_[rng.uniform(0, 400, 2), np.exp(rng.uniform(np.log(4), np.log(250), 2))]
        c = cats[rng.integers(num_cats)]['id']
      dets.append({'image_id': im['id'], 'category_id': int(c), 'bbox': [float(v) for v in b],
                   'score': float(np.round(rng.uniform(), 2))})
  return {'images': images, 'annotations': anns, 'categories': cats}, dets


@pytest.mark.parametrize('seed,num_images,num_cats,max_gt,max_dets', [
    (0, 60, 6, 12, 60), (1, 25, 3, 30, 150), (2, 80, 10, 4, 8)])
def test_matches_pycocotools(seed, num_images, num_cats, max_gt, max_dets):
  gt, dets = random_coco(seed, num_images, num_cats, max_gt, max_dets)
  ours = coco_evaluate(gt, dets)
  assert tuple(ours) == STAT_NAMES
  np.testing.assert_allclose([ours[k] for k in STAT_NAMES], pycocotools_stats(gt, dets), atol=1e-4, rtol=0)


def test_perfect_and_undefined():
  gt = {'images': [{'id': 1}, {'id': 2}], 'categories': [{'id': 1}, {'id': 7}],
        'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1, 'bbox': [10, 10, 50, 60], 'area': 3000,
                         'iscrowd': 0}]}
  dets = [{'image_id': 1, 'category_id': 1, 'bbox': [10, 10, 50, 60], 'score': 0.9}]
  out = coco_evaluate(gt, dets)
  assert out['AP'] == pytest.approx(1.0) and out['AR1'] == pytest.approx(1.0)
  assert out['APs'] == -1 and out['APl'] == -1  # no small or large objects, as pycocotools
  np.testing.assert_allclose([out[k] for k in STAT_NAMES], pycocotools_stats(gt, dets), atol=1e-12)
  assert coco_evaluate(gt, [])['AP'] == 0.0


def test_bad_input():
  with pytest.raises(UserError, match='categories'):
    coco_evaluate({'images': [], 'annotations': []}, [])
  gt = {'images': [{'id': 1}], 'annotations': [], 'categories': [{'id': 1}]}
  with pytest.raises(UserError, match='image ids'):
    coco_evaluate(gt, [{'image_id': 5, 'category_id': 1, 'bbox': [0, 0, 1, 1], 'score': 1.0}])
