"""Anchor generators: the lectures' n + m - 1 scheme, Faster R-CNN grids, SSD default boxes, k-means."""

import math

import jax
import numpy as np

from vision_jax import ops


def test_lecture_anchor_count_and_shapes():
  h, w = 6, 8
  sizes, ratios = (0.75, 0.5, 0.25), (1.0, 2.0, 0.5)
  a = np.asarray(ops.multibox_prior((h, w), sizes, ratios))
  assert a.shape == (w * h * (len(sizes) + len(ratios) - 1), 4)
  first = a[:5]  # the anchors centred on pixel (0, 0): centre (0.5, 0.5)
  np.testing.assert_allclose((first[:, :2] + first[:, 2:]) / 2, np.full((5, 2), 0.5), atol=1e-6)
  want_wh = [(w * s * math.sqrt(r), h * s / math.sqrt(r))
             for s, r in [(0.75, 1), (0.75, 2), (0.75, 0.5), (0.5, 1), (0.25, 1)]]
  np.testing.assert_allclose(first[:, 2:] - first[:, :2], want_wh, rtol=1e-6)
  # On a 3x4 feature map of the same image the centres are 2 pixels apart.
  b = np.asarray(ops.multibox_prior((h, w), sizes, ratios, feature_size=(3, 4)))
  assert b.shape == (3 * 4 * 5, 4)
  np.testing.assert_allclose((b[5, :2] + b[5, 2:]) / 2, [3.0, 1.0], atol=1e-6)


def test_grid_anchors_faster_rcnn():
  a = np.asarray(ops.grid_anchors((2, 3), 16, sizes=(32.0, 64.0), ratios=(0.5, 1.0, 2.0)))
  assert a.shape == (2 * 3 * 6, 4)
  wh = a[:6, 2:] - a[:6, :2]
  np.testing.assert_allclose(wh[:, 0] * wh[:, 1], [32**2, 64**2] * 3, rtol=1e-5)   # area = size^2
  np.testing.assert_allclose(wh[:, 1] / wh[:, 0], [0.5, 0.5, 1, 1, 2, 2], rtol=1e-5)  # ratio = h / w
  np.testing.assert_allclose((a[6 * 4, :2] + a[6 * 4, 2:]) / 2, [16.0, 16.0])  # location (1, 1)
  c = np.asarray(ops.grid_anchors((2, 3), (8, 16), sizes=(32.0,), ratios=(1.0,), offset=0.5))
  np.testing.assert_allclose((c[:, :2] + c[:, 2:]) / 2, [[8, 4], [24, 4], [40, 4], [8, 12], [24, 12], [40, 12]])


def test_ssd_default_boxes():
  boxes = np.asarray(ops.ssd_default_boxes([4, 2, 1], [[2.0], [2.0, 3.0], [2.0]], clip=False))
  assert boxes.shape == (16 * 4 + 4 * 6 + 1 * 4, 4)
  # Map 0 has scale 0.2, map 1 scale 0.55: the first box is 0.2 square at (1/8, 1/8), the second is
  # sqrt(0.2 * 0.55) square, the third 0.2 sqrt(2) wide.
  np.testing.assert_allclose(boxes[0], [0.125 - 0.1, 0.125 - 0.1, 0.125 + 0.1, 0.125 + 0.1], atol=1e-6)
  s = math.sqrt(0.2 * 0.55)
  np.testing.assert_allclose(boxes[1, 2:] - boxes[1, :2], [s, s], atol=1e-6)
  np.testing.assert_allclose(boxes[2, 2:] - boxes[2, :2], [0.2 * math.sqrt(2), 0.2 / math.sqrt(2)], atol=1e-6)
  clipped = np.asarray(ops.ssd_default_boxes([4, 2, 1], [[2.0], [2.0, 3.0], [2.0]]))
  assert clipped.min() >= 0 and clipped.max() <= 1


def test_kmeans_anchors_find_the_clusters():
  rng = np.random.default_rng(0)
  centres = np.array([[10.0, 10.0], [50.0, 20.0], [20.0, 80.0]])
  wh = np.concatenate([c * rng.uniform(0.9, 1.1, (200, 2)) for c in centres])
  anchors = np.asarray(ops.kmeans_anchors(wh, 3, jax.random.key(0), num_iters=30))
  np.testing.assert_allclose(anchors, centres, rtol=0.05)
  assert float(ops.mean_best_iou(wh, anchors)) > 0.8
