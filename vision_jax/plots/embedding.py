"""Pictures of a metric-learning run: the embeddings in 2-D (PCA, coloured by class), the hardest pairs, the
verification ROC curve and one-shot episodes with their answers."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position


def class_name(label: int, class_names: Sequence[str]) -> str:
  """The name of class `label`, or the label itself where `class_names` has none for it."""
  return str(class_names[label]) if 0 <= label < len(class_names) else str(label)


def _show(ax: plt.Axes, image: np.ndarray) -> None:
  """Draws an [h, w, C] image on `ax`: one channel in grey, three as colour."""
  ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)


def plot_embedding_pca(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], path: str,
                       title: str = "embeddings, first two principal components") -> None:
  """Scatter of [M, 2] projected embeddings, one colour per class (a legend up to 20 classes).

  Args:
    points: [M, 2] coordinates (`evaluation.embedding.pca_2d`).
    labels: [M] classes.
    class_names: names by label (labels beyond them are shown as numbers).
    path: output PNG path.
  """
  points, labels = np.asarray(points), np.asarray(labels).reshape(-1)
  classes = np.unique(labels)
  fig, ax = plt.subplots(figsize=(6.4, 5.6))
  cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20" if len(classes) <= 20 else "hsv")
  for k, c in enumerate(classes):
    chosen = labels == c
    colour = cmap(k % cmap.N if len(classes) <= 20 else k / len(classes))
    ax.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.7, color=colour,
               label=class_name(int(c), class_names))
  if len(classes) <= 20:
    ax.legend(markerscale=3, fontsize=8, loc="best")
  ax.set_xlabel("PC 1")
  ax.set_ylabel("PC 2")
  ax.set_title(f"{title} ({len(labels)} examples, {len(classes)} classes)", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_hardest_pairs(thumbs: np.ndarray, labels: np.ndarray, positive_pairs: np.ndarray,
                       positive_scores: np.ndarray, negative_pairs: np.ndarray, negative_scores: np.ndarray,
                       class_names: Sequence[str], path: str) -> None:
  """Two bands of image pairs, each pair a column of its two images captioned with their classes and score: the
  least alike same-class pairs (top band) and the most alike different-class pairs (bottom band).

  Args:
    thumbs: [M, h, w, C] uint8 images of the examples the pairs index.
    labels: [M] classes.
    positive_pairs, negative_pairs: [P, 2] row indices; positive_scores, negative_scores: [P] their scores
      (minus the distance, or the pair head's score).
    class_names: names by label.
    path: output PNG path.
  """
  thumbs, labels = np.asarray(thumbs), np.asarray(labels).reshape(-1)
  columns = max(len(positive_pairs), len(negative_pairs), 1)
  fig = plt.figure(figsize=(max(1.1 * columns, 4.0), 6.4))
  # rows: band 1's two images, a gap for its captions and band 2's title, band 2's two images
  grid = fig.add_gridspec(5, columns, height_ratios=(1, 1, 0.75, 1, 1), hspace=0.06, wspace=0.12, left=0.02,
                          right=0.98, top=0.92, bottom=0.09)
  kinds = (("hardest positives: same class, least alike", positive_pairs, positive_scores, 0),
           ("hardest negatives: different classes, most alike", negative_pairs, negative_scores, 3))
  for title, pairs, scores, first_row in kinds:
    fig.text(0.02, grid[first_row, 0].get_position(fig).y1 + 0.012, title, ha="left", va="bottom", fontsize=9)
    for column, ((i, j), score) in enumerate(zip(np.asarray(pairs), np.asarray(scores))):
      for side, index in enumerate((i, j)):
        ax = fig.add_subplot(grid[first_row + side, column])
        ax.axis("off")
        _show(ax, thumbs[index])
      names = [class_name(int(labels[index]), class_names) for index in (i, j)]
      names = " / ".join(names) if sum(map(len, names)) <= 12 else "\n".join(names)  # people's names: one a line
      # the caption goes under the pair's second image
      ax.text(0.5, -0.05, f"{names}\ns={score:.2f}", transform=ax.transAxes, ha="center", va="top", fontsize=7)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_roc(fars: np.ndarray, tars: np.ndarray, path: str, auc: float, far: float, tar: float,
             threshold_point: tuple[float, float] | None = None) -> None:
  """The verification ROC curve, TAR against FAR on a log axis, with the reported TAR at `far` marked.

  Args:
    fars, tars: [F] the curve (`evaluation.embedding_pictures.roc_curve`).
    path: output PNG path.
    auc: the ROC AUC, for the title.
    far, tar: the reported operating point (e.g. 1e-3 and its TAR).
    threshold_point: (FAR, TAR) of the accuracy threshold, drawn when given.
  """
  fig, ax = plt.subplots(figsize=(5.6, 4.4))
  ax.step(fars, tars, where="post", color="tab:blue", label="held-out pairs")
  ax.plot([far], [tar], "o", color="tab:red", label=f"TAR {tar:.3f} at FAR {far:g}")
  if threshold_point is not None:
    ax.plot([threshold_point[0]], [threshold_point[1]], "s", color="tab:green", label="accuracy threshold")
  ax.set_xscale("log")
  ax.set_xlim(min(fars[0], far), 1.0)
  ax.set_ylim(0.0, 1.02)
  ax.set_xlabel("false accept rate (different-class pairs accepted)")
  ax.set_ylabel("true accept rate (same-class pairs accepted)")
  ax.set_title(f"verification ROC (AUC {auc:.3f})", fontsize=10)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_episodes(support_thumbs: np.ndarray, query_thumbs: np.ndarray, support_labels: np.ndarray,
                  query_labels: np.ndarray, given: np.ndarray, class_names: Sequence[str], path: str,
                  title: str) -> None:
  """N-way one-shot episodes: per episode a row of supports (one per class) and below each support a query of that
  class, captioned with the class it was given, green when right and red when wrong.

  Args:
    support_thumbs, query_thumbs: [E, N, h, w, C] uint8 images.
    support_labels, query_labels, given: [E, N] classes of the supports, of the queries and the queries' answers.
    class_names: names by label.
    path: output PNG path.
    title: the figure's title (e.g. the setting and its accuracy).
  """
  episodes, ways = np.asarray(given).shape
  fig, axes = plt.subplots(2 * episodes, ways, figsize=(1.1 * ways + 0.4, 2.5 * episodes + 0.4), squeeze=False)
  for e in range(episodes):
    for j in range(ways):
      for row, image, caption, colour in (
          (2 * e, support_thumbs[e, j], f"support {class_name(int(support_labels[e, j]), class_names)}", "black"),
          (2 * e + 1, query_thumbs[e, j], f"-> {class_name(int(given[e, j]), class_names)}",
           "tab:green" if given[e, j] == query_labels[e, j] else "tab:red")):
        ax = axes[row, j]
        _show(ax, np.asarray(image))
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
          spine.set_color(colour)
          spine.set_linewidth(2.5 if row % 2 else 0.5)
        ax.set_title(caption, fontsize=6, color=colour)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
