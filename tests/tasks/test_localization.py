"""The localization and sliding-window tasks' own parts: landmark NME, flip-aware inputs, metric sums, the
training windows' targets (NumPy references); the loop parts run in tests/tasks/test_conformance.py."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tests.tasks import in_process
from vision_jax.data import digit_localization, digit_scenes
from vision_jax.data.features import make_spec, object_features, Feature
from vision_jax.tasks import localization, localization_pictures, sliding_window


def _localization_task(**overrides):
  spec = make_spec("digit_localization", "train", 8, digit_localization.features())
  config = in_process.load_config("configs/localization_digits.py:keypoints,smoke", **overrides)
  return localization.LocalizationTask(config, spec)


def _example_batch():
  image = np.zeros((2, 64, 64, 1), np.uint8)
  image[0, 10:20, 5:9] = 200
  boxes = np.array([[[5.0, 10.0, 9.0, 20.0]], [[30.0, 30.0, 50.0, 60.0]]], np.float32)
  keypoints = np.array([[[2, 8, 1], [12, 8, 1], [12, 24, 1], [2, 24, 0]],
                        [[28, 28, 1], [52, 28, 1], [52, 62, 1], [28, 62, 1]]], np.float32)
  return {"image": image, "label": np.array([3, 7], np.int32), "boxes": boxes, "keypoints": keypoints,
          "box_labels": np.array([[3], [7]], np.int32), "num_objects": np.ones(2, np.int32)}


def test_landmark_nme_hand_example():
  truth = np.array([[[0, 0, 1], [30, 0, 1], [30, 40, 1], [0, 40, 0]]], np.float32)  # diagonal 0 -> 2: 50 px
  predicted = truth[..., :2] + np.array([[[3, 4], [0, 0], [6, 8], [100, 100]]], np.float32)  # errors 5, 0, 10
  nme, has_visible = localization.landmark_errors(jnp.asarray(predicted), jnp.asarray(truth))
  np.testing.assert_allclose(nme, [(5 + 0 + 10) / 3 / 50], rtol=1e-6)
  np.testing.assert_array_equal(has_visible, [1.0])


def test_flip_moves_box_and_swaps_keypoint_pairs():
  task = _localization_task(input__augment="flip_lr(p=1.0)", input__normalize="")
  batch = _example_batch()
  prepared = jax.device_get(task.prepare(jax.random.PRNGKey(0), batch, train=True))
  np.testing.assert_allclose(prepared["image"][..., 0], batch["image"][:, :, ::-1, 0] / 255.0, rtol=1e-6)
  x1, y1, x2, y2 = batch["boxes"][:, 0].T
  np.testing.assert_allclose(prepared["box"], np.stack([64 - x2, y1, 64 - x1, y2], -1))
  mirrored = batch["keypoints"].copy()
  mirrored[..., 0] = 64 - mirrored[..., 0]
  expected = mirrored[:, [1, 0, 3, 2]]  # FLIP_PAIRS (top_left, top_right), (bottom_right, bottom_left)
  np.testing.assert_allclose(prepared["keypoints"], expected)
  eval_inputs = jax.device_get(task.prepare(jax.random.PRNGKey(0), batch, train=False))
  np.testing.assert_allclose(eval_inputs["keypoints"], batch["keypoints"])  # no augmentation in evaluation


def test_metric_sums_of_known_predictions():
  task = _localization_task(input__normalize="")
  batch = _example_batch()
  prepared = task.prepare(jax.random.PRNGKey(0), batch, train=False)
  truth_box = batch["boxes"][:, 0] / 64
  shifted = batch["keypoints"][..., :2] + np.array([3.0, 4.0])  # every point 5 px off
  outputs = {"logits": jnp.asarray(np.eye(10)[[3, 1]] * 10.0),  # second example: wrong class
             "boxes": jnp.asarray(np.stack([truth_box[0], truth_box[1] + [0, 0, 0.0, -0.25]])),
             "keypoints": jnp.asarray(shifted / 64), "visibility": jnp.zeros((2, 4))}
  sums = jax.device_get(task._sums(outputs, prepared, task.losses(outputs, prepared), jnp.ones(2)))
  # Example 1's box: 20 x 30 truth, predicted 20 x 14 inside it: IoU 14/30.
  np.testing.assert_allclose(sums["box_iou"], 1 + 14 / 30, rtol=1e-5)
  assert sums["accuracy"] == 1 and sums["localization_accuracy"] == 1
  diagonals = np.hypot(10, 16), np.hypot(24, 34)
  np.testing.assert_allclose(sums["nme"], 5 / diagonals[0] + 5 / diagonals[1], rtol=1e-5)
  assert sums["with_keypoints"] == 2 and sums["failures"] == 2  # NME 0.265 and 0.120, both above 0.1


def _numpy_iou(a, b):
  lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
  inter = np.prod(np.clip(rb - lt, 0, None))
  return inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)


@pytest.mark.parametrize("negative_iou", [0.3, 0.5])  # an ignored band 0.3-0.5; none (the config's default)
def test_sliding_window_training_targets(negative_iou):
  features = {"image": Feature("image", (96, 96, 1), "uint8"), **object_features(3, 10, digit_scenes.CLASS_NAMES)}
  spec = make_spec("digit_scenes", "train", 4, features)
  config = in_process.load_config("configs/sliding_window_digits.py:smoke,hard=0.5")
  config.sliding_window.negative_iou = negative_iou
  task = sliding_window.SlidingWindowTask(config, spec)
  boxes = np.array([[[10, 10, 26, 40], [50, 40, 90, 70], [0, 0, 0, 0]],
                    [[30, 20, 50, 44], [0, 0, 0, 0], [0, 0, 0, 0]]], np.float32)
  batch = {"boxes": boxes, "box_labels": np.array([[4, 9, -1], [2, -1, -1]], np.int32),
           "num_objects": np.array([2, 1], np.int32)}
  out = jax.device_get(task.sample_windows(jax.random.PRNGKey(3), batch))
  assert out["windows"].shape == (2, 16, 4)
  for n in range(2):
    ideal = []
    for k in range(batch["num_objects"][n]):
      x1, y1, x2, y2 = boxes[n, k]
      half = 1.25 * max(x2 - x1, y2 - y1) / 2
      ideal.append(np.array([(x1 + x2) / 2 - half, (y1 + y2) / 2 - half, (x1 + x2) / 2 + half, (y1 + y2) / 2 + half]))
    for s in range(16):
      ious = [_numpy_iou(out["windows"][n, s].astype(np.float64), w) for w in ideal]
      best = int(np.argmax(ious))
      if ious[best] >= 0.5:
        assert out["labels"][n, s] == batch["box_labels"][n, best] and out["weights"][n, s] == 1
      elif ious[best] < negative_iou:
        assert out["labels"][n, s] == 10 and out["weights"][n, s] == 1
      else:
        assert out["weights"][n, s] == 0
  assert out["positive"][:, :4].mean() > 0.5  # the first windows are drawn close around objects
  # Image 1 has one object: its close windows (0-3) and hard windows (4-7, hard_fraction 0.5 of the config) stray
  # from its ideal window (centre (40, 32), side 30) by at most 0.12 / 0.48 of their side and exp(0.15 / 0.6) in side.
  windows = out["windows"][1, :8].astype(np.float64)
  side = windows[:, 2] - windows[:, 0]
  offset = np.abs((windows[:, :2] + windows[:, 2:]) / 2 - [40.0, 32.0]).max(1) / side
  log_scale = np.abs(np.log(side / 30.0))
  assert np.all(offset[:4] <= 0.12 + 1e-5) and np.all(log_scale[:4] <= 0.15 + 1e-5)
  assert np.all(offset[4:] <= 0.48 + 1e-5) and np.all(log_scale[4:] <= 0.6 + 1e-5)
  assert np.any(offset[4:] > 0.12) or np.any(log_scale[4:] > 0.15)


def test_crop_jitter_moves_and_scales_boxes_within_bounds():
  task = _localization_task()
  boxes = np.tile(np.array([[0.2, 0.3, 0.4, 0.7]], np.float32), (500, 1))  # w 0.2, h 0.4: longer 0.4
  moved = np.asarray(task.jittered_boxes(jax.random.PRNGKey(0), jnp.asarray(boxes)))
  shift = (moved[:, :2] + moved[:, 2:]) / 2 - np.array([0.3, 0.5])
  scale = (moved[:, 2:] - moved[:, :2]) / np.array([0.2, 0.4])
  assert np.all(np.abs(shift) <= 0.1 * 0.4 + 1e-6) and np.abs(shift).max() > 0.9 * 0.04
  np.testing.assert_allclose(scale[:, 0], scale[:, 1], rtol=1e-5)  # one factor: the aspect ratio is kept
  assert np.exp(-0.1) - 1e-5 <= scale.min() < 0.92 and 1.08 < scale.max() <= np.exp(0.1) + 1e-5


def test_plot_detections_draws_only_valid_boxes_at_or_above_min_score(monkeypatch, tmp_path):
  captured = []

  def fake_grid(cells, **kwargs):
    captured.extend(cells)
    return plt.figure()

  monkeypatch.setattr(localization_pictures, "annotated_grid_figure", fake_grid)
  rows = {"image": np.zeros((1, 8, 8, 1), np.uint8), "boxes": np.zeros((1, 2, 4), np.float32),
          "box_labels": np.zeros((1, 2), np.int32), "num_objects": np.array([1]),
          "pred_boxes": np.arange(16, dtype=np.float32).reshape(1, 4, 4), "pred_labels": np.array([[1, 2, 3, 4]]),
          "pred_scores": np.array([[0.9, 0.3, 0.29, 0.8]], np.float32), "pred_valid": np.array([[1, 1, 1, 0]], bool)}
  localization_pictures.plot_detections(rows, str(tmp_path / "d.png"), [str(i) for i in range(5)], min_score=0.3)
  predicted = captured[1]
  np.testing.assert_array_equal(predicted["box_labels"], [1, 2])  # 0.29 below the floor, 0.8 not valid
  np.testing.assert_array_equal(predicted["boxes"], rows["pred_boxes"][0][[0, 1]])
  assert predicted["title"] == "predicted 0 (>= 0.30): 0.90, 0.30"
