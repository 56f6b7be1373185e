"""Faster R-CNN, SSD and YOLO box coding: formulas and round trips."""

import math

import jax
import numpy as np

from vision_jax import ops


def _boxes(rng, n):
  xy = rng.uniform(0, 100, (n, 2))
  wh = rng.uniform(4, 50, (n, 2))
  return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def test_faster_rcnn_round_trip_and_formula():
  rng = np.random.default_rng(0)
  anchors, boxes = _boxes(rng, 50), _boxes(rng, 50)
  for weights in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
    deltas = ops.faster_rcnn_encode(anchors, boxes, weights)
    np.testing.assert_allclose(ops.faster_rcnn_decode(anchors, deltas, weights), boxes, atol=2e-4)
  d = np.asarray(ops.faster_rcnn_encode(np.array([[0.0, 0, 10, 20]]), np.array([[5.0, 0, 25, 10]])))[0]
  # centres (5, 10) -> (15, 5); sizes (10, 20) -> (20, 10)
  np.testing.assert_allclose(d, [1.0, -0.25, math.log(2), math.log(0.5)], rtol=1e-6)


def test_ssd_lecture_form_and_round_trip():
  anchor = np.array([[10.0, 10, 30, 50]])  # centre (20, 30), size (20, 40)
  box = np.array([[12.0, 14, 36, 46]])     # centre (24, 30), size (24, 32)
  got = np.asarray(ops.ssd_encode(anchor, box, variances=(0.1, 0.1, 0.2, 0.2)))[0]
  want = [(24 - 20) / 20 / 0.1, 0.0, math.log(24 / 20) / 0.2, math.log(32 / 40) / 0.2]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  got = np.asarray(ops.ssd_encode(anchor, box, variances=(0.5, 1, 1, 1), means=(0.1, 0, 0, 0)))[0]
  np.testing.assert_allclose(got[0], ((24 - 20) / 20 - 0.1) / 0.5, rtol=1e-5)
  rng = np.random.default_rng(1)
  a, b = _boxes(rng, 40), _boxes(rng, 40)
  np.testing.assert_allclose(ops.ssd_decode(a, ops.ssd_encode(a, b)), b, atol=2e-4)


def test_yolo_decode_formula_and_round_trip():
  t = np.array([[0.0, 0.0, math.log(2.0), 0.0]], np.float32)
  box = np.asarray(ops.yolo_decode(t, np.array([[3, 4]]), np.array([[10.0, 20.0]]), stride=8))[0]
  # centre ((0.5 + 3) * 8, (0.5 + 4) * 8) = (28, 36); size (20, 20)
  np.testing.assert_allclose(box, [18, 26, 38, 46], rtol=1e-6)
  rng = np.random.default_rng(2)
  offsets = rng.normal(size=(30, 4)).astype(np.float32)
  cells = rng.integers(0, 13, (30, 2))
  anchors = rng.uniform(10, 90, (30, 2)).astype(np.float32)
  boxes = ops.yolo_decode(offsets, cells, anchors, 32.0)
  np.testing.assert_allclose(ops.yolo_encode(boxes, cells, anchors, 32.0), offsets, atol=2e-4)
  assert jax.jit(ops.yolo_decode, static_argnums=3)(offsets, cells, anchors, 32.0).shape == (30, 4)
