"""Examples drawn with their annotations: boxes with class names, masks as coloured overlays, keypoints, in a
grid (matplotlib, Agg). Used by `python -m vision_jax.data show` and reusable for predictions of detection,
segmentation and keypoint models: pass predicted boxes or masks in the same layout.

Annotations follow `vision_jax.data.features`: boxes are x1, y1, x2, y2 in pixels where pixel (r, c) covers
[c, c+1) x [r, r+1); keypoints are x, y, visibility in the same coordinates.
"""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
from matplotlib import patches  # pylint: disable=wrong-import-position
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from vision_jax.data.features import IGNORE_INDEX  # pylint: disable=wrong-import-position
_PALETTE = np.array(plt.get_cmap("tab10").colors)


def color(index: int) -> np.ndarray:
  """RGB in [0, 1] of object or class `index` (tab10, cycled)."""
  return _PALETTE[int(index) % len(_PALETTE)]


def mask_overlay(masks: np.ndarray, colors: np.ndarray, alpha: float = 0.45) -> np.ndarray:
  """An RGBA [H, W, 4] overlay painting mask k in colors[k] (later masks over earlier ones).

  Args:
    masks: [K, H, W] 0/1 masks.
    colors: [K, 3] RGB in [0, 1].
    alpha: opacity of painted pixels (others are transparent).
  """
  overlay = np.zeros(masks.shape[1:] + (4,), np.float32)
  for mask, rgb in zip(np.asarray(masks, bool), colors):
    overlay[mask] = (*rgb, alpha)
  return overlay


def semantic_overlay(semantic_mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
  """An RGBA [H, W, 4] overlay of a class-per-pixel mask: class 0 (background) transparent, class c in
  `color(c - 1)`, `IGNORE_INDEX` in white."""
  semantic_mask = np.asarray(semantic_mask)
  classes = [c for c in np.unique(semantic_mask) if c not in (0, IGNORE_INDEX)]
  overlay = mask_overlay(np.stack([semantic_mask == c for c in classes]) if classes else
                         np.zeros((0,) + semantic_mask.shape, bool), np.array([color(c - 1) for c in classes]), alpha)
  overlay[semantic_mask == IGNORE_INDEX] = (1.0, 1.0, 1.0, alpha)
  return overlay


def _short(name: str) -> str:
  """"top_left" -> "tl": initials of a keypoint name's words."""
  return "".join(word[:1] for word in name.split("_")) or name


def draw_annotations(ax, image: np.ndarray, *, boxes: np.ndarray | None = None,
                     box_labels: np.ndarray | None = None, num_objects: int | None = None,
                     class_names: Sequence[str] = (), instance_masks: np.ndarray | None = None,
                     semantic_mask: np.ndarray | None = None, keypoints: np.ndarray | None = None,
                     keypoint_names: Sequence[str] = (), title: str = "") -> None:
  """Draws one image with its annotations on a matplotlib axes.

  Args:
    ax: the axes.
    image: [H, W, C] (C 1 or 3; uint8, or float in [0, 1]), or a [T, C] signal drawn as C lines.
    boxes: [M, 4] xyxy boxes; the first `num_objects` rows are drawn, in object colours.
    box_labels: [M] class of each box, named by `class_names` (the index when no names).
    num_objects: valid rows of boxes, box_labels and instance_masks (all rows when None).
    class_names: names of box classes.
    instance_masks: [M, H, W] 0/1 masks, painted in the colour of their box.
    semantic_mask: [H, W] class per pixel, painted by class (drawn only without instance masks).
    keypoints: [K, 3] x, y, visibility; visible points are drawn and labelled by their names' initials.
    keypoint_names: names of the K keypoints.
    title: text above the image.
  """
  image = np.asarray(image)
  ax.set_title(title, fontsize=7)
  if image.ndim == 2:
    ax.plot(image, linewidth=0.6)
    ax.set_xticks([])
    ax.set_yticks([])
    return
  ax.axis("off")
  gray = image.shape[-1] == 1
  ax.imshow(image[..., 0] if gray else image[..., :3], cmap="gray" if gray else None, vmin=0,
            vmax=255 if image.dtype == np.uint8 else 1.0, interpolation="nearest")
  count = len(boxes) if boxes is not None else len(instance_masks) if instance_masks is not None else 0
  count = count if num_objects is None else int(num_objects)
  if instance_masks is not None and count:
    ax.imshow(mask_overlay(np.asarray(instance_masks)[:count], np.array([color(k) for k in range(count)])),
              interpolation="nearest")
  elif semantic_mask is not None:
    ax.imshow(semantic_overlay(semantic_mask), interpolation="nearest")
  for k in range(count if boxes is not None else 0):
    x1, y1, x2, y2 = np.asarray(boxes[k], np.float64)
    # imshow centres pixel (r, c) at (c, r): a box edge at pixel coordinate x is drawn at x - 0.5.
    ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=color(k),
                                   linewidth=1.0))
    if box_labels is not None:
      label = int(box_labels[k])
      name = class_names[label] if 0 <= label < len(class_names) else str(label)
      ax.text(x1 - 0.5, y1 - 0.5, name, fontsize=6, color="white", va="bottom", ha="left",
              bbox={"facecolor": color(k), "edgecolor": "none", "pad": 0.5, "alpha": 0.85})
  if keypoints is not None:
    for k, (x, y, visible) in enumerate(np.asarray(keypoints, np.float64)):
      if visible > 0:
        ax.plot(x - 0.5, y - 0.5, "o", markersize=3, color=color(k), markeredgecolor="white", markeredgewidth=0.4)
        name = _short(keypoint_names[k]) if k < len(keypoint_names) else str(k)
        ax.text(x - 0.5, y - 0.5, name, fontsize=5, color=color(k), va="top", ha="left")
  ax.set_xlim(-0.5, image.shape[1] - 0.5)
  ax.set_ylim(image.shape[0] - 0.5, -0.5)


def annotated_grid_figure(examples: Sequence[dict[str, Any]], cols: int = 4, cell_inches: float = 2.0, **names):
  """A grid of examples, one cell each, drawn by `draw_annotations`.

  Args:
    examples: dicts with "image" and any of the keyword arguments of `draw_annotations` (boxes, box_labels,
      num_objects, instance_masks, semantic_mask, keypoints, title).
    cols: cells per row.
    cell_inches: side of a cell.
    **names: class_names and keypoint_names shared by every cell.

  Returns:
    The matplotlib figure (close it with `plt.close`).
  """
  count = len(examples)
  cols = max(1, min(cols, count))
  rows = max(1, -(-count // cols))
  fig, axes = plt.subplots(rows, cols, figsize=(cell_inches * cols, cell_inches * rows + 0.2), squeeze=False)
  for i, ax in enumerate(axes.flat):
    if i >= count:
      ax.axis("off")
      continue
    example = dict(examples[i])
    draw_annotations(ax, example.pop("image"), **example, **names)
  fig.tight_layout()
  return fig


def plot_annotated_grid(examples: Sequence[dict[str, Any]], path: str, cols: int = 4, **names) -> None:
  """Writes `annotated_grid_figure(examples, cols, **names)` as a PNG."""
  fig = annotated_grid_figure(examples, cols, **names)
  fig.savefig(path, dpi=120)
  plt.close(fig)
