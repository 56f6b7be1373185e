"""The detection task: postprocessing and metrics on hand-worked cases, each detector kind fitting one tiny batch,
and --mode=predict's picture and COCO-format JSON. (The loop parts run in tests/tasks/test_conformance.py.)"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from vision_jax.configs import common
from vision_jax.data.features import Feature, make_spec, object_features
from vision_jax.tasks import detection, detectors
from vision_jax.train_lib.state import TrainState

SIZE = 32


def test_postprocess_hand_worked():
  boxes = jnp.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], jnp.float32)  # IoU(A, B) = 81 / 119
  scores = jnp.array([[0.9, 0.1], [0.8, 0.7], [0.05, 0.005]])
  out = jax.device_get(detectors.postprocess(boxes, scores, 0.01, 10, 0.45, 5))
  # Class 0: A kept, B suppressed by A, C kept (0.05 > 0.01). Class 1: B kept, A suppressed, C below threshold.
  np.testing.assert_array_equal(out["pred_valid"], [True, True, True, False, False])
  np.testing.assert_array_equal(out["pred_labels"][:3], [0, 1, 0])
  np.testing.assert_allclose(out["pred_scores"][:3], [0.9, 0.7, 0.05], rtol=1e-6)
  np.testing.assert_array_equal(out["pred_boxes"][:3], np.asarray(boxes)[[0, 1, 2]])


def test_detection_metrics_hand_worked():
  boxes = np.array([[[0, 0, 10, 10], [20, 20, 40, 40]], [[5, 5, 25, 25], [0, 0, 0, 0]]], np.float32)
  rows = {"boxes": boxes, "box_labels": np.array([[0, 1], [1, -1]]), "num_objects": np.array([2, 1]),
          "pred_boxes": boxes.copy(), "pred_scores": np.array([[0.9, 0.8], [0.0, 0.0]], np.float32),
          "pred_labels": np.array([[0, 1], [0, 0]]), "pred_valid": np.array([[True, True], [False, False]])}
  metrics = detection.detection_metrics(rows)
  # Class 0: its one truth found first: AP 1. Class 1: one of two truths found, at precision 1: AP 0.5.
  assert metrics["VOC_AP50"] == pytest.approx(0.75)
  assert metrics["AP50"] == pytest.approx((1.0 + 51 / 101) / 2, abs=1e-6)  # COCO's 101-point recall grid
  rows["pred_valid"][1, 0], rows["pred_labels"][1, 0], rows["pred_scores"][1, 0] = True, 1, 0.7
  rows["pred_boxes"][1, 0] = boxes[1, 0]
  metrics = detection.detection_metrics(rows)
  assert metrics["VOC_AP50"] == pytest.approx(1.0) and metrics["AP"] == pytest.approx(1.0)


def _tiny_task(kind: str) -> detection.DetectionTask:
  config = common.base_config()
  config.task = "detection"
  config.input.preprocess = "to_float"
  anchors = {"yolo_v2": "6,6;10,10;14,14", "yolo_v3": "4,4;6,6;8,8;10,10;12,12;14,14;16,16;18,18;20,20"}
  config.detector = detectors.default_config(kind, width=8, grid=2, num_anchors=3, anchors=anchors.get(kind, "kmeans"),
                                             max_detections=5)
  spec = make_spec("tiny", "train", 8, {"image": Feature("image", (SIZE, SIZE, 1), "uint8"),
                                        **object_features(3, 2, ("square", "bar"))})
  return detection.DetectionTask(config, spec)


def _batch() -> dict[str, jnp.ndarray]:
  images = np.zeros((4, SIZE, SIZE, 1), np.uint8)
  boxes = np.zeros((4, 3, 4), np.float32)
  labels = np.full((4, 3), -1, np.int32)
  for i in range(4):
    x, y = 2 + 4 * i, 3 + 2 * i
    images[i, y:y + 12, x:x + 12] = 255
    images[i, 26:30, 4:28] = 160
    boxes[i, :2] = [[x, y, x + 12, y + 12], [4, 26, 28, 30]]
    labels[i, :2] = [0, 1]
  return {"image": jnp.asarray(images), "boxes": jnp.asarray(boxes), "box_labels": jnp.asarray(labels),
          "num_objects": jnp.full((4,), 2, jnp.int32), "mask": jnp.ones((4,), bool)}


@pytest.fixture(scope="module")
def fitted_ssd():
  return _fit("ssd")


def _fit(kind: str, steps: int = 40):
  task = _tiny_task(kind)
  txs = {"model": optax.adam(3e-3)}
  state = TrainState.create(task.init_variables(jax.random.PRNGKey(0)), txs, jax.random.PRNGKey(1), {})
  step = jax.jit(lambda s, b: task.train_step(s, b, txs))
  batch = _batch()
  losses = []
  for _ in range(steps):
    state, metrics = step(state, batch)
    state = state.replace(step=state.step + 1)
    losses.append(float(metrics["loss"]))
  return task, state, losses


@pytest.mark.slow  # three more compiled train steps (~15 s each on a quiet 2-core CPU)
@pytest.mark.parametrize("kind", ["yolo_v1", "yolo_v2", "yolo_v3"])
def test_yolo_detectors_fit_a_tiny_batch(kind):
  _, _, losses = _fit(kind)
  assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], losses[::10]


def test_ssd_fits_a_tiny_batch_and_finds_the_objects(fitted_ssd):
  task, state, losses = fitted_ssd
  assert losses[-1] < 0.3 * losses[0], losses[::10]
  out = jax.device_get(jax.jit(task.eval_step)(state, _batch()))
  assert out["pred_valid"].shape == (4, 5) and out["pred_boxes"].shape == (4, 5, 4)
  rows = {k: out[k] for k in detection.PRED_KEYS + detection.TRUTH_KEYS}
  assert detection.detection_metrics(rows)["VOC_AP50"] > 0.5


def test_predict_writes_a_picture_and_coco_json(fitted_ssd, tmp_path):
  task, state, _ = fitted_ssd
  path = tmp_path / "scene.png"
  Image.fromarray(np.asarray(_batch()["image"][0, ..., 0])).resize((64, 64)).save(path)  # twice the model's size
  lines = task.predict(state, [str(path)])
  assert len(lines) == 1 and str(path) in lines[0]
  assert (tmp_path / "scene.detections.png").stat().st_size > 0
  records = json.loads((tmp_path / "detections.json").read_text())
  assert records and {"image_id", "category_id", "bbox", "score"} <= set(records[0])
  assert all(len(r["bbox"]) == 4 and 0 <= r["bbox"][0] <= 64 and r["bbox"][2] >= 0 for r in records)
  square = [r for r in records if r["category_id"] == 0 and r["score"] > 0.3]
  assert square, records  # the 12 px square at (2, 3) appears in 64 px coordinates: about (4, 6, 24, 24)
  x, y, w, h = square[0]["bbox"]
  assert abs(x - 4) < 6 and abs(y - 6) < 6 and abs(w - 24) < 8 and abs(h - 24) < 8


def test_yolo_v1_decode_hand_worked():
  # The loss test's outputs (tests/losses/test_detection_losses.py): the truth [110, 15, 140, 35] predicted by
  # box 0 of cell (row 0, column 2) of a 2 x 3 grid on a 100 x 150 image.
  out = np.zeros((1, 2, 3, 13), np.float32)
  out[0, 0, 2, :10] = [0.5, 0.5, np.sqrt(0.2), np.sqrt(0.2), 0.8, 0.5, 0.5, 0.1, 0.1, 0.1]
  out[0, 0, 2, 10:] = [0.1, 0.2, 0.6]
  out[0, 1, 1, 4], out[0, 1, 1, 10:] = -0.5, -0.5  # negative confidence x negative class scores: no detection
  detector = detectors.build(detectors.default_config("yolo_v1", grid=2), 3, (100, 150), {}, lambda: None)
  boxes, scores = jax.device_get(detector.decode(jnp.asarray(out)))
  assert boxes.shape == (1, 12, 4) and scores.shape == (1, 12, 3)
  index = (0 * 3 + 2) * 2 + 0  # (row, column, box) in row-major order
  np.testing.assert_allclose(boxes[0, index], [110, 15, 140, 35], atol=1e-4)
  np.testing.assert_allclose(scores[0, index], [0.08, 0.16, 0.48], atol=1e-6)
  np.testing.assert_allclose(boxes[0, index + 1], [124.25, 24.5, 125.75, 25.5], atol=1e-4)  # 1.5 x 1 px
  np.testing.assert_allclose(scores[0, index + 1], [0.01, 0.02, 0.06], atol=1e-6)
  assert scores[0, (1 * 3 + 1) * 2].max() == 0.0 and (scores >= 0).all()
