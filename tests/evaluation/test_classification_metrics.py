"""Per-class precision/recall/F1 against hand-computed values, their place in eval metrics, the mistakes grid."""

import numpy as np
import pytest
from PIL import Image

import matplotlib.pyplot as plt

from vision_jax import plots
from vision_jax.configs import mnist_lenet
from vision_jax.data.features import DatasetSpec
from vision_jax.evaluation import classification as cls_metrics
from vision_jax.tasks.classification import ClassificationTask

# Rows true, columns predicted. Class 2 has no examples but is predicted once (wrongly): its precision, recall
# and F1 are 0 by the zero-division convention.
CONFUSION = np.array([[5, 1, 0, 0],
                      [2, 3, 0, 1],
                      [0, 0, 0, 0],
                      [1, 0, 1, 4]])


def test_precision_recall_f1_by_hand():
  out = cls_metrics.precision_recall_f1(CONFUSION)
  # precision = TP / predicted (column sum), recall = TP / support (row sum), F1 = 2TP / (2TP + FP + FN).
  np.testing.assert_allclose(out["precision"], [5 / 8, 3 / 4, 0, 4 / 5])
  np.testing.assert_allclose(out["recall"], [5 / 6, 3 / 6, 0, 4 / 6])
  np.testing.assert_allclose(out["f1"], [10 / 14, 6 / 10, 0, 8 / 11])
  np.testing.assert_array_equal(out["support"], [6, 6, 0, 6])


def test_perfect_and_never_predicted_classes():
  out = cls_metrics.precision_recall_f1(np.diag([3, 0, 2]) + np.array([[0, 0, 0], [4, 0, 0], [0, 0, 0]]))
  # Class 1's four examples are all called class 0: recall 0, never predicted so precision 0.
  np.testing.assert_allclose(out["precision"], [3 / 7, 0, 1])
  np.testing.assert_allclose(out["recall"], [1, 0, 1])
  np.testing.assert_allclose(out["f1"], [6 / 10, 0, 1])


def test_reduce_eval_reports_macro_f1_and_per_class_arrays():
  spec = DatasetSpec("toy", "test", 18, (28, 28, 1), 4, ("a", "b", "c", "d"))
  task = ClassificationTask(mnist_lenet.get_config(), spec)
  sums = {"loss": np.float32(9.0), "accuracy": np.float32(12.0), "count": np.float32(18.0),
          "confusion": CONFUSION.astype(np.float32)}
  metrics = task.reduce_eval(sums)
  assert metrics["macro_f1"] == pytest.approx(np.mean([10 / 14, 6 / 10, 0, 8 / 11]))
  np.testing.assert_allclose(metrics["per_class_recall"], [5 / 6, 3 / 6, 0, 4 / 6])
  report = cls_metrics.per_class_report(metrics, spec.class_names)
  assert list(report) == ["a", "b", "c", "d"]
  assert report["d"] == pytest.approx({"precision": 0.8, "recall": 4 / 6, "f1": 8 / 11, "support": 6})
  lines = cls_metrics.format_per_class(report).splitlines()
  assert len(lines) == 5 and lines[1].split() == ["a", "0.6250", "0.8333", "0.7143", "6"]


def test_misclassified_grid_has_one_cell_per_image(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (7, 10, 12, 1), dtype=np.uint8)
  true, pred = list("0123456"), list("6543210")
  fig = plots.misclassified_figure(images, true, pred, confidences=np.linspace(0.9, 0.3, 7), cols=3)
  drawn = [ax for ax in fig.axes if ax.images]
  assert len(fig.axes) == 9 and len(drawn) == 7  # 3 x 3 grid, the last two cells blank
  assert drawn[4].get_title() == "true 4\npred 2 (0.50)"
  np.testing.assert_array_equal(drawn[4].images[0].get_array(), images[4, :, :, 0])
  plt.close(fig)
  path = str(tmp_path / "mistakes.png")
  plots.plot_misclassified(images[:5], true[:5], pred[:5], path, cols=3)
  assert Image.open(path).size == (round(1.7 * 3 * 100), round(1.9 * 2 * 100))  # 3 columns, 2 rows at 100 dpi
  empty = str(tmp_path / "none.png")
  plots.plot_misclassified(images[:0], [], [], empty)
  assert not (tmp_path / "none.png").exists()
