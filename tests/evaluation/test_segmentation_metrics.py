"""Segmentation metrics against NumPy counting, Keras `MeanIoU` (KERAS_BACKEND=jax) and torchmetrics
`MulticlassJaccardIndex` (tests/fixtures/segmentation/torch_segmentation.npz, made by make_torch_fixtures.py)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.evaluation import segmentation as seg

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "segmentation", "torch_segmentation.npz")


def np_confusion(labels, predictions, k, ignore_index=255):
  confusion = np.zeros((k, k), np.int64)
  for truth, guess in zip(labels.ravel(), predictions.ravel()):
    if truth != ignore_index:
      confusion[truth, guess] += 1
  return confusion


def random_maps(seed, n=4, size=12, k=5, present=None):
  rng = np.random.default_rng(seed)
  present = k if present is None else present
  labels = rng.integers(0, present, size=(n, size, size)).astype(np.int32)
  predictions = np.where(rng.random(labels.shape) < 0.5, labels, rng.integers(0, present, labels.shape))
  labels[rng.random(labels.shape) < 0.1] = 255
  return labels, predictions.astype(np.int32)


def test_confusion_matrix_counts_ignores_and_masks():
  labels, predictions = random_maps(0)
  confusion = seg.confusion_matrix(labels.astype(np.uint8), predictions, 5)
  assert confusion.dtype == jnp.int32
  np.testing.assert_array_equal(np.asarray(confusion), np_confusion(labels, predictions, 5))
  masked = seg.confusion_matrix(labels, predictions, 5, example_mask=jnp.array([1, 0, 1, 0]))
  np.testing.assert_array_equal(np.asarray(masked), np_confusion(labels[[0, 2]], predictions[[0, 2]], 5))
  jitted = jax.jit(seg.confusion_matrix, static_argnums=2)
  summed = sum(np.asarray(jitted(labels[i:i + 2], predictions[i:i + 2], 5), np.int64) for i in (0, 2))
  np.testing.assert_array_equal(summed, np_confusion(labels, predictions, 5))


def test_metrics_of_a_hand_worked_confusion():
  # rows true, columns predicted; class 2 never appears anywhere
  confusion = np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
  iou = [3 / (3 + 1 + 2), 4 / (4 + 2 + 1), np.nan]
  np.testing.assert_allclose(seg.per_class_iou(confusion), iou)
  np.testing.assert_allclose(seg.per_class_dice(confusion), [6 / 9, 8 / 11, np.nan])
  assert seg.mean_iou(confusion) == pytest.approx((iou[0] + iou[1]) / 2)
  assert seg.mean_dice(confusion) == pytest.approx((6 / 9 + 8 / 11) / 2)
  assert seg.pixel_accuracy(confusion) == pytest.approx(7 / 10)
  report = seg.segmentation_metrics(confusion, ["bg", "digit", "unused"])
  assert report["per_class_iou"]["bg"] == pytest.approx(0.5) and np.isnan(report["per_class_iou"]["unused"])
  assert np.isnan(seg.mean_iou(np.zeros((2, 2))))


def test_mean_iou_matches_keras():
  os.environ.setdefault("KERAS_BACKEND", "jax")
  keras = pytest.importorskip("keras")
  if keras.backend.backend() != "jax":
    pytest.skip("Keras was already imported with another backend")
  max_difference = 0.0
  for seed, present in [(1, 6), (2, 4), (3, 2)]:  # present < 6: classes absent from truth and predictions
    labels, predictions = random_maps(seed, k=6, present=present)
    metric = keras.metrics.MeanIoU(num_classes=6, ignore_class=255)
    confusion = np.zeros((6, 6), np.int64)
    for i in (0, 2):
      metric.update_state(labels[i:i + 2].reshape(-1), predictions[i:i + 2].reshape(-1))
      confusion += np.asarray(seg.confusion_matrix(labels[i:i + 2], predictions[i:i + 2], 6))
    expected = float(metric.result())
    np.testing.assert_array_equal(confusion, np.asarray(metric.total_cm))
    assert seg.mean_iou(confusion) == pytest.approx(expected, abs=1e-6)
    max_difference = max(max_difference, abs(seg.mean_iou(confusion) - expected))
  print(f"max |mean IoU - keras MeanIoU| = {max_difference:.3g}")


def test_mean_iou_matches_torchmetrics_fixture():
  ref = np.load(FIXTURE, allow_pickle=False)
  labels, predictions = ref["miou_labels"], ref["miou_preds"]
  confusion = np.asarray(seg.confusion_matrix(labels, predictions, 6))
  np.testing.assert_array_equal(confusion, np_confusion(labels, predictions, 6))
  iou = seg.per_class_iou(confusion)
  assert np.isnan(iou[5])  # torchmetrics' average="none" reports 0 for it; its macro mean skips it, as here
  np.testing.assert_allclose(iou[:5], ref["miou_per_class"][:5], atol=1e-6)
  assert seg.mean_iou(confusion) == pytest.approx(float(ref["miou_out"]), abs=1e-6)
  print(f"max |mean IoU - torchmetrics| = {abs(seg.mean_iou(confusion) - float(ref['miou_out'])):.3g}, "
        f"per class {np.max(np.abs(iou[:5] - ref['miou_per_class'][:5])):.3g}")
