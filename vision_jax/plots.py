"""PNG plots of a run: loss/accuracy curves and the confusion matrix (matplotlib, Agg backend)."""

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
