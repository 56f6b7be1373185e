"""Localisation losses against hand-computed values."""

import numpy as np
import pytest

from vision_jax.losses import localization as loc


def test_smooth_l1_hand_values():
  # |d| < beta: 0.5 d^2 / beta; else |d| - 0.5 beta.
  got = loc.smooth_l1(np.array([0.5, -2.0, 0.0, 0.3]), np.zeros(4), beta=1.0)
  np.testing.assert_allclose(got, [0.125, 1.5, 0.0, 0.045], rtol=1e-6)
  np.testing.assert_allclose(loc.smooth_l1(np.array([0.05, 0.3]), np.zeros(2), beta=0.1), [0.0125, 0.25], rtol=1e-6)


def test_box_smooth_l1_sums_coordinates():
  got = loc.box_smooth_l1(np.array([[0.0, 0.0, 2.0, 1.5]]), np.array([[0.5, 0.0, 0.0, 1.5]]), beta=1.0)
  np.testing.assert_allclose(got, [0.125 + 1.5], rtol=1e-6)


@pytest.mark.parametrize("a,b,expected", [
    ([0, 0, 2, 2], [1, 1, 3, 3], 1 - (1 / 7 - 2 / 9)),  # inter 1, union 7, hull 9
    ([0, 0, 1, 1], [2, 0, 3, 1], 1 + 1 / 3),  # disjoint: IoU 0, hull 3, union 2
    ([1, 2, 4, 6], [1, 2, 4, 6], 0.0),
])
def test_giou_loss_hand_values(a, b, expected):
  got = loc.giou_loss(np.array([a], np.float32), np.array([b], np.float32))
  np.testing.assert_allclose(got, [expected], rtol=1e-5, atol=1e-6)


def test_keypoint_loss_ignores_invisible_points():
  predicted = np.array([[[1.0, 1.0], [0.0, 0.0], [50.0, 50.0]],
                        [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
  truth = np.array([[[1.5, 1.0, 1], [2.0, 0.0, 1], [0.0, 0.0, 0]],
                    [[9.0, 9.0, 0], [9.0, 9.0, 0], [9.0, 9.0, 0]]])
  # Example 0: point 0 gives 0.125 (dx 0.5), point 1 gives 1.5 (dx 2), point 2 is invisible: mean over 2 points.
  got = loc.keypoint_loss(predicted, truth, beta=1.0)
  np.testing.assert_allclose(got, [(0.125 + 1.5) / 2, 0.0], rtol=1e-6)


def test_visibility_loss_is_binary_cross_entropy():
  logits = np.array([[2.0, -1.0, 0.0]])
  truth = np.array([[[0, 0, 1], [0, 0, 0], [0, 0, 1]]], np.float32)
  expected = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0)), np.log(2.0)])
  np.testing.assert_allclose(loc.visibility_loss(logits, truth), [expected], rtol=1e-6)
