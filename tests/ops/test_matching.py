"""Anchor matching rules on hand-computed IoU matrices."""

import jax
import numpy as np
import pytest

from vision_jax import ops
from vision_jax.errors import UserError

IOU = np.array([[0.8, 0.4, 0.1, 0.0, 0.65],
                [0.1, 0.55, 0.2, 0.05, 0.5]], np.float32)


def test_iou_match_thresholds_and_best_anchor():
  np.testing.assert_array_equal(ops.iou_match(IOU, 0.7, 0.3, keep_best_anchor=False), [0, -2, -1, -1, -2])
  # gt 1 has no anchor >= 0.7: it keeps its best anchor (1).
  np.testing.assert_array_equal(ops.iou_match(IOU, 0.7, 0.3), [0, 1, -1, -1, -2])
  # A padded (invalid) gt matches nothing and claims nothing.
  np.testing.assert_array_equal(ops.iou_match(IOU, 0.7, 0.3, gt_valid=np.array([True, False])),
                                [0, -2, -1, -1, -2])
  assert jax.jit(ops.iou_match, static_argnums=(1, 2))(IOU, 0.7, 0.3).shape == (5,)
  with pytest.raises(UserError):
    ops.iou_match(IOU, 0.3, 0.7)


def test_greedy_match_lecture_procedure():
  iou = np.array([[0.1, 0.6, 0.3, 0.55],
                  [0.7, 0.65, 0.2, 0.1],
                  [0.05, 0.2, 0.4, 0.35]], np.float32)
  # Largest 0.7 -> anchor 0 gets gt 1; then 0.6 -> anchor 1 gets gt 0; then 0.4 -> anchor 2 gets gt 2;
  # anchor 3 is left and takes gt 0 because 0.55 >= 0.5.
  np.testing.assert_array_equal(ops.greedy_match(iou, 0.5), [1, 0, 2, 0])
  np.testing.assert_array_equal(ops.greedy_match(iou, 0.6), [1, 0, 2, -1])


def test_yolo_grid_assign():
  gt = np.array([[2.0, 3, 12, 13], [15, 22, 45, 37], [0, 0, 5, 5]], np.float32)
  anchors = np.array([[10.0, 10.0], [30.0, 15.0]], np.float32)
  cells, assignment = ops.yolo_grid_assign(gt, anchors, (4, 4), 10.0, gt_valid=np.array([True, True, False]))
  np.testing.assert_array_equal(np.asarray(cells)[:2], [[0, 0, 0], [2, 3, 1]])
  assignment = np.asarray(assignment)
  assert assignment[0, 0, 0] == 0 and assignment[2, 3, 1] == 1
  assert np.sum(assignment >= 0) == 2  # the invalid box is not assigned
