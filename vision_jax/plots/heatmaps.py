"""Attribution pictures: a heatmap over its image with a colour bar and the prediction in the title, and grids of
small images (filters, activation maps, maximising images) with captions (matplotlib, Agg)."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position


def _show_image(ax, image: np.ndarray) -> None:
  image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
  if image.ndim == 3 and image.shape[-1] == 1:
    ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
  else:
    ax.imshow(image, interpolation="nearest")


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, path: str, title: str, method: str,
                    alpha: float = 0.5, cmap: str = "jet", signed: bool = False,
                    box: Optional[Sequence[float]] = None) -> str:
  """Writes the image (left) and the heatmap blended over it (right) with a colour bar.

  Args:
    image: [H, W, C] in [0, 1] (C = 1 or 3).
    heatmap: [H, W] attribution values (any scale; drawn from min to max, or symmetric around 0 when `signed`).
    path: the PNG to write.
    title: the figure title (e.g. "predicted 7 (p = 0.98)").
    method: the heatmap's name, shown over its panel and on the colour bar.
    alpha: heatmap opacity.
    cmap: matplotlib colour map ("bwr" is used for signed maps).
    signed: draw a diverging map centred on 0.
    box: an optional [x1, y1, x2, y2] rectangle drawn on both panels (e.g. the object's box).

  Returns:
    `path`.
  """
  heat = np.asarray(heatmap, np.float32)
  if signed:
    limit = float(np.max(np.abs(heat))) or 1.0
    vmin, vmax, cmap = -limit, limit, "bwr"
  else:
    vmin, vmax = float(heat.min()), float(heat.max())
    vmax = vmax if vmax > vmin else vmin + 1.0
  fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.6))
  _show_image(axes[0], image)
  axes[0].set_title("input")
  _show_image(axes[1], image)
  shown = axes[1].imshow(heat, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax, interpolation="bilinear")
  axes[1].set_title(method)
  for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
    if box is not None:
      x1, y1, x2, y2 = box
      ax.add_patch(matplotlib.patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, color="lime",
                                                linewidth=1.2))
  bar = fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
  bar.set_label(method)
  fig.suptitle(title)
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def image_grid_figure(images: np.ndarray, path: str, title: str, captions: Optional[Sequence[str]] = None,
                      columns: Optional[int] = None) -> str:
  """Writes [N, h, w, C] images in [0, 1] as a grid, each with an optional caption; returns `path`."""
  n = len(images)
  columns = columns or int(np.ceil(np.sqrt(n)))
  rows = -(-n // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows + 0.5), squeeze=False)
  for k, ax in enumerate(axes.flat):
    ax.set_xticks([])
    ax.set_yticks([])
    if k >= n:
      ax.axis("off")
      continue
    _show_image(ax, images[k])
    if captions is not None:
      ax.set_title(captions[k], fontsize=7)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
