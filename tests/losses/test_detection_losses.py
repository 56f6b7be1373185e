"""Detection losses: SSD against torchvision's `SSD.compute_loss` (fixture) and hand-worked cases; YOLO v1/v2/v3
on hand-worked cases of one truth and two anchors (or boxes) with known IoUs."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.losses import detection as det

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "detection", "ssd_torchvision.npz")
LOG2 = math.log(2.0)


@pytest.fixture(scope="module")
def tv():
  with np.load(FIXTURE, allow_pickle=False) as f:
    return dict(f)


def _valid(counts, m):
  return np.arange(m)[None] < np.asarray(counts)[:, None]


def test_ssd_match_equals_torchvision_matcher(tv):
  valid = _valid(tv["loss_counts"], tv["loss_gt_boxes"].shape[1])
  for i in range(len(valid)):
    ours = det.ssd_match(jnp.asarray(tv["loss_gt_boxes"][i]), jnp.asarray(valid[i]), jnp.asarray(tv["loss_anchors"]))
    np.testing.assert_array_equal(np.asarray(ours), tv["loss_matched"][i])
  assert (tv["loss_matched"][0] >= 0).sum() >= 3  # the fixture exercises matching


def test_ssd_loss_equals_torchvision_compute_loss(tv):
  valid = _valid(tv["loss_counts"], tv["loss_gt_boxes"].shape[1])
  out = det.ssd_loss(jnp.asarray(tv["loss_cls_logits"]), jnp.asarray(tv["loss_box_regression"]),
                     jnp.asarray(tv["loss_anchors"]), jnp.asarray(tv["loss_gt_boxes"]),
                     jnp.asarray(tv["loss_gt_labels"]), jnp.asarray(valid))
  box_diff = abs(float(out["bbox_regression"]) - float(tv["loss_bbox_regression"]))
  cls_diff = abs(float(out["classification"]) - float(tv["loss_classification"]))
  assert box_diff <= 1e-5 * float(tv["loss_bbox_regression"]), box_diff
  assert cls_diff <= 1e-5 * float(tv["loss_classification"]), cls_diff


def test_ssd_loss_hand_worked_matching_coding_and_hard_negatives():
  # One truth [0, 0, 10, 5]; anchor 0 = [0, 0, 10, 10] has IoU 0.5 (matched), anchors 1..4 are far (IoU 0).
  anchors = jnp.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70], [80, 80, 90, 90]],
                      jnp.float32)
  gt = jnp.array([[[0, 0, 10, 5]]], jnp.float32)
  # Negatives' logits (0, c) with e^c = 1, 3, 7, 15: cross-entropies ln 2, ln 4, ln 8, ln 16; the positive's ln 2.
  logits = jnp.array([[[0.0, 0.0], [0.0, 0.0], [0.0, math.log(3)], [0.0, math.log(7)], [0.0, math.log(15)]]])
  out = det.ssd_loss(logits, jnp.zeros((1, 5, 4)), anchors, gt, jnp.array([[1]]), jnp.array([[True]]))
  # Targets with weights (10, 10, 5, 5): (0, 10 * -2.5 / 10, 0, 5 ln 0.5); smooth-L1 of -2.5 and -3.466.
  dh = 5 * math.log(0.5)
  assert float(out["bbox_regression"]) == pytest.approx((2.5 - 0.5) + (abs(dh) - 0.5), rel=1e-6)
  # 3 x 1 positive = 3 hardest negatives: ln 16 + ln 8 + ln 4, plus the positive's ln 2, over 1 positive.
  assert float(out["classification"]) == pytest.approx(10 * LOG2, rel=1e-6)
  assert float(out["num_positives"]) == 1


def test_ssd_match_gives_each_truth_its_best_anchor_below_threshold():
  anchors = jnp.array([[0, 0, 10, 10], [0, 0, 40, 40]], jnp.float32)
  gt = jnp.array([[0, 0, 10, 2], [0, 0, 50, 50]], jnp.float32)  # IoUs 0.2 / 0.016 and 0.04 / 0.64
  matches = det.ssd_match(gt, jnp.array([True, True]), anchors)
  np.testing.assert_array_equal(np.asarray(matches), [0, 1])
  matches = det.ssd_match(gt, jnp.array([False, True]), anchors)
  np.testing.assert_array_equal(np.asarray(matches), [-1, 1])


def _v1_outputs():
  out = np.zeros((1, 2, 2, 12), np.float32)  # S=2, B=2, C=2 on a 100x100 image
  out[0, 0, 0, 0:5] = [0.4, 0.4, math.sqrt(0.2), math.sqrt(0.2), 0.5]  # box 0: same centre, 0.2 x 0.2: IoU 0.25
  out[0, 0, 0, 5:10] = [0.6, 0.4, math.sqrt(0.4), math.sqrt(0.4), 0.3]  # box 1: shifted 0.1: IoU 0.6
  out[0, 0, 0, 10:12] = [0.2, 0.7]
  return out


def test_yolo_v1_loss_hand_worked():
  gt = jnp.array([[[0, 0, 40, 40]]], jnp.float32)  # centre (20, 20) in cell (0, 0), w = h = 0.4
  out = det.yolo_v1_loss(jnp.asarray(_v1_outputs()), gt, jnp.array([[1]]), jnp.array([[True]]), (100, 100), 2)
  # Box 1 (IoU 0.6 > 0.25) is responsible: confidence 0.3 -> 0.6; box 0's 0.5 -> 0 at 0.5; x off by 0.2 at 5.
  assert float(out["object_loss"]) == pytest.approx(0.5 * (0.6 - 0.3) ** 2, abs=1e-6)
  assert float(out["noobject_loss"]) == pytest.approx(0.5 / 2 * 0.5 ** 2, abs=1e-6)
  assert float(out["coord_loss"]) == pytest.approx(5 / 2 * 0.2 ** 2, abs=1e-6)
  assert float(out["class_loss"]) == pytest.approx(0.5 * (0.2 ** 2 + 0.3 ** 2), abs=1e-6)
  assert float(out["loss"]) == pytest.approx(0.045 + 0.0625 + 0.1 + 0.065, abs=1e-6)


def _v2_outputs(anchor0_tw: float):
  out = np.zeros((1, 1, 1, 2, 8), np.float32)  # 1x1 grid, anchors (20, 20) and (50, 50), C = 3
  out[0, 0, 0, 0, 2:4] = anchor0_tw
  out[0, 0, 0, 1, 2:4] = math.log(0.8)  # 40 x 40 box at the centre: IoU 0.64 with the 50 x 50 truth
  return jnp.asarray(out)


def test_yolo_v2_loss_hand_worked():
  anchors = jnp.array([[20, 20], [50, 50]], jnp.float32)
  gt, labels, valid = jnp.array([[[25, 25, 75, 75]]], jnp.float32), jnp.array([[2]]), jnp.array([[True]])
  out = det.yolo_v2_loss(_v2_outputs(0.0), anchors, gt, labels, valid, (100, 100))
  # wh-IoU picks anchor 1 (1.0 vs 0.16). Its confidence 0.5 -> IoU 0.64 at 5; tw, th off by ln 0.8 at
  # (2 - 0.25); softmax of 3 equal logits: ln 3. Anchor 0's box (IoU 0.16 < 0.6) pays 0.5^2 / 2.
  assert float(out["object_loss"]) == pytest.approx(5 / 2 * (0.64 - 0.5) ** 2, rel=1e-5)
  assert float(out["coord_loss"]) == pytest.approx(1.75 / 2 * 2 * math.log(0.8) ** 2, rel=1e-5)
  assert float(out["class_loss"]) == pytest.approx(math.log(3), rel=1e-6)
  assert float(out["noobject_loss"]) == pytest.approx(0.125, rel=1e-6)
  # Anchor 0 predicting the truth itself (IoU 1 > 0.6) is not pushed to 0 (no-object suppression).
  out = det.yolo_v2_loss(_v2_outputs(math.log(2.5)), anchors, gt, labels, valid, (100, 100))
  assert float(out["noobject_loss"]) == 0.0


def test_yolo_v3_loss_hand_worked():
  anchors = jnp.array([[20, 20], [50, 50]], jnp.float32)
  masks = ((1,), (0,))  # a 1x1 scale with anchor 1, a 2x2 scale with anchor 0
  coarse = np.zeros((1, 1, 1, 1, 7), np.float32)
  coarse[..., 2:4] = math.log(0.8)
  fine = np.zeros((1, 2, 2, 1, 7), np.float32)
  gt, labels, valid = jnp.array([[[25, 25, 75, 75]]], jnp.float32), jnp.array([[1]]), jnp.array([[True]])
  out = det.yolo_v3_loss((jnp.asarray(coarse), jnp.asarray(fine)), anchors, masks, gt, labels, valid, (100, 100))
  # The truth takes anchor 1 (wh-IoU 1 vs 0.16), on the coarse scale: objectness BCE(0 -> 1) = ln 2; x, y
  # BCE(sigmoid 0.5 vs 0.5) = ln 2 each and tw, th off by ln 0.8, at (2 - 0.25); classes BCE ln 2 each. The
  # fine scale's four 20 x 20 boxes have IoU 100 / 2800 < 0.5 with it: objectness BCE(0 -> 0) = ln 2 each.
  assert float(out["object_loss"]) == pytest.approx(LOG2, rel=1e-6)
  assert float(out["noobject_loss"]) == pytest.approx(4 * LOG2, rel=1e-6)
  assert float(out["coord_loss"]) == pytest.approx(1.75 * (2 * LOG2 + math.log(0.8) ** 2), rel=1e-5)
  assert float(out["class_loss"]) == pytest.approx(2 * LOG2, rel=1e-6)


def _v1_off_diagonal_outputs():
  # A 2 x 3 grid (rows x columns) on a 100 x 150 (H x W) image, B = 2, C = 3. The truth's cell is (row 0, col 2),
  # which has no transposed twin: a row/column mix-up or a wrong reshape puts the terms in another cell.
  out = np.zeros((1, 2, 3, 13), np.float32)
  out[..., 10:] = 0.5  # class scores of empty cells: not in the loss
  out[0, 1, 0, 4] = 0.4  # an empty cell's box confidence: no-object term
  out[0, 0, 2, 0:5] = [0.5, 0.5, math.sqrt(0.2), math.sqrt(0.2), 0.8]  # box 0 = the truth exactly
  out[0, 0, 2, 5:10] = [0.5, 0.5, 0.1, 0.1, 0.1]  # box 1: 0.01 x 0.01 at the centre, IoU 1 / 400
  out[0, 0, 2, 10:] = [0.1, 0.2, 0.6]
  return out


def test_yolo_v1_loss_truth_in_an_off_diagonal_cell():
  gt = jnp.array([[[110, 15, 140, 35]]], jnp.float32)  # centre (125, 25): column 125 / 50 = 2, row 25 / 50 = 0
  loss = jax.jit(det.yolo_v1_loss, static_argnums=(4, 5))  # one compilation instead of ~100 eager ops
  out = loss(jnp.asarray(_v1_off_diagonal_outputs()), gt, jnp.array([[2]]), jnp.array([[True]]), (100, 150), 2)
  # Box 0 (IoU 1) is responsible: no coordinate error, confidence 0.8 -> 1. No-object: box 1's 0.1 and the empty
  # cell's 0.4, at 0.5. Classes only in the truth's cell: (0.1, 0.2, 0.6) against (0, 0, 1).
  assert float(out["coord_loss"]) == pytest.approx(0.0, abs=1e-10)
  assert float(out["object_loss"]) == pytest.approx(0.5 * 0.2 ** 2, abs=1e-6)
  assert float(out["noobject_loss"]) == pytest.approx(0.25 * (0.1 ** 2 + 0.4 ** 2), abs=1e-6)
  assert float(out["class_loss"]) == pytest.approx(0.5 * (0.01 + 0.04 + 0.16), abs=1e-6)


@pytest.mark.parametrize("box_loss", ["giou", "ciou"])
def test_yolo_v3_iou_box_losses_hand_worked(box_loss):
  anchors = jnp.array([[20, 20], [50, 50]], jnp.float32)
  coarse = np.zeros((1, 1, 1, 1, 7), np.float32)
  coarse[..., 2:4] = [math.log(0.8), math.log(0.4)]  # a 40 x 20 box centred on the 50 x 50 truth: [30, 40, 70, 60]
  fine = np.zeros((1, 2, 2, 1, 7), np.float32)
  gt, labels, valid = jnp.array([[[25, 25, 75, 75]]], jnp.float32), jnp.array([[1]]), jnp.array([[True]])
  loss = jax.jit(lambda outputs, gt: det.yolo_v3_loss(outputs, anchors, ((1,), (0,)), gt, labels, valid, (100, 100),
                                                       box_loss=box_loss, box_weight=2.0))
  out = loss((jnp.asarray(coarse), jnp.asarray(fine)), gt)
  # IoU 800 / 2500; the hull is the truth, so GIoU = IoU; same centres, so CIoU = IoU - alpha v with the aspect
  # term v = 4 / pi^2 (atan 1 - atan 2)^2 and alpha = v / (1 - IoU + v). Weight 2 x (2 - 0.25).
  iou = 0.32
  v = 4 / math.pi ** 2 * (math.atan(1.0) - math.atan(2.0)) ** 2
  similarity = iou if box_loss == "giou" else iou - v / (1 - iou + v) * v
  assert float(out["coord_loss"]) == pytest.approx(2 * 1.75 * (1 - similarity), rel=1e-5)
  assert float(out["object_loss"]) == pytest.approx(LOG2, rel=1e-6)  # the other terms are unchanged
