"""PNG plots of a run: loss/accuracy curves, the confusion matrix and misclassified examples (matplotlib, Agg)."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position


def plot_curves(history: dict[str, dict[str, list[tuple[int, float]]]], path: str,
                metrics: Sequence[str] = ("loss", "accuracy")) -> None:
  """Plots each metric against the step, one panel per metric, one line per split (train, eval).

  Args:
    history: {split: {metric: [(step, value), ...]}} as read by `metric_writers.read_csv`.
    path: output PNG path.
    metrics: metrics to plot (missing ones are skipped).
  """
  present = [m for m in metrics if any(m in h for h in history.values())]
  fig, axes = plt.subplots(1, max(len(present), 1), figsize=(5 * max(len(present), 1), 3.6), squeeze=False)
  for ax, metric in zip(axes[0], present):
    for split, values in sorted(history.items()):
      if metric in values:
        steps, ys = zip(*values[metric])
        ax.plot(steps, ys, marker="o" if split != "train" else None, markersize=3, label=split)
    ax.set_xlabel("step")
    ax.set_title(metric)
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_confusion_matrix(confusion: np.ndarray, class_names: Sequence[str], path: str) -> None:
  """Draws a [K, K] confusion matrix (rows true, columns predicted) with counts in the cells."""
  confusion = np.asarray(confusion)
  k = confusion.shape[0]
  size = max(4.0, 0.45 * k + 2)
  fig, ax = plt.subplots(figsize=(size, size))
  ax.imshow(confusion, cmap="Blues")
  if k <= 30:
    threshold = confusion.max() / 2 if confusion.size else 0
    for i in range(k):
      for j in range(k):
        ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center", fontsize=7,
                color="white" if confusion[i, j] > threshold else "black")
    ax.set_xticks(range(k), class_names, rotation=90 if k > 10 else 0)
    ax.set_yticks(range(k), class_names)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  accuracy = np.trace(confusion) / max(confusion.sum(), 1)
  ax.set_title(f"confusion matrix (accuracy {accuracy:.4f})")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def misclassified_figure(images: np.ndarray, true_names: Sequence[str], predicted_names: Sequence[str],
                         confidences: Sequence[float] | None = None, cols: int = 6):
  """A grid of images, one cell each, titled "true T / pred P" (and the predicted probability if given).

  Args:
    images: [M, H, W, C] uint8 or float in [0, 1]; C is 1 (drawn in gray) or 3.
    true_names: M true class names.
    predicted_names: M predicted class names.
    confidences: optional M probabilities of the predicted classes.
    cols: cells per row.

  Returns:
    The matplotlib figure (one axes per cell; close it with `plt.close`).
  """
  count = len(images)
  cols = max(1, min(cols, count))
  rows = max(1, -(-count // cols))
  fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 1.9 * rows), squeeze=False)
  for i, ax in enumerate(axes.flat):
    ax.axis("off")
    if i >= count:
      continue
    image = np.asarray(images[i])
    gray = image.shape[-1] == 1
    ax.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0,
              vmax=255 if image.dtype == np.uint8 else 1.0)
    title = f"true {true_names[i]}\npred {predicted_names[i]}"
    if confidences is not None:
      title += f" ({confidences[i]:.2f})"
    ax.set_title(title, fontsize=7)
  fig.tight_layout()
  return fig


def plot_misclassified(images: np.ndarray, true_names: Sequence[str], predicted_names: Sequence[str], path: str,
                       confidences: Sequence[float] | None = None, cols: int = 6) -> None:
  """Writes `misclassified_figure(...)` as a PNG (nothing is written for zero images)."""
  if len(images) == 0:
    return
  fig = misclassified_figure(images, true_names, predicted_names, confidences, cols)
  fig.savefig(path, dpi=100)
  plt.close(fig)
