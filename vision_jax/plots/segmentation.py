"""Pictures of semantic segmentation: class-coloured masks, indexed PNG masks, image / truth / prediction grids
and single-image overlays (matplotlib Agg for figures, PIL for the masks).

Colours: class 0 (background) black, classes 1..10 the ten tab10 hues, 11..20 their light tab20 variants (then
cycled), `IGNORE_INDEX` white.
"""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
from matplotlib import patches  # pylint: disable=wrong-import-position
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
from PIL import Image  # pylint: disable=wrong-import-position

from vision_jax.data.features import IGNORE_INDEX  # pylint: disable=wrong-import-position

_TAB20 = np.array(plt.get_cmap("tab20").colors)
# tab10's ten distinct hues first (tab20's even entries), then their light variants.
_CLASS_COLORS = (np.concatenate([_TAB20[0::2], _TAB20[1::2]]) * 255).round().astype(np.uint8)
OVERLAY_ALPHA = 0.5


def palette() -> np.ndarray:
  """uint8 [256, 3] RGB colour of every mask value (see the module docstring)."""
  colors = np.zeros((256, 3), np.uint8)
  colors[1:] = _CLASS_COLORS[np.arange(255) % len(_CLASS_COLORS)]
  colors[IGNORE_INDEX] = 255
  return colors


def colorize(mask: np.ndarray) -> np.ndarray:
  """Class map [H, W] (uint8 values) -> uint8 RGB [H, W, 3] in the palette's colours."""
  return palette()[np.asarray(mask, np.uint8)]


def save_indexed_png(mask: np.ndarray, path: str) -> None:
  """Writes a class map [H, W] as a palette ("P") PNG: pixel values are the classes, the palette shows them."""
  image = Image.fromarray(np.asarray(mask, np.uint8), mode="P")
  image.putpalette(palette().reshape(-1).tolist())
  image.save(path)


def _rgb(image: np.ndarray) -> np.ndarray:
  """An image [H, W, C] (C 1 or 3, any range) as float RGB in [0, 1] for display."""
  image = np.asarray(image, np.float32)
  if image.ndim == 2:
    image = image[..., None]
  low, high = float(image.min()), float(image.max())
  scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
  return np.repeat(scaled, 3, -1) if scaled.shape[-1] == 1 else scaled[..., :3]


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
  """float RGB [H, W, 3] of `image` with every non-background pixel of `mask` [H, W] blended with its colour."""
  rgb = _rgb(image)
  colors = colorize(mask).astype(np.float32) / 255
  painted = (np.asarray(mask) != 0)[..., None]
  return np.where(painted, (1 - alpha) * rgb + alpha * colors, rgb)


def _legend(fig, class_names: Sequence[str], present: np.ndarray) -> None:
  colors = palette()
  handles = [patches.Patch(color=colors[c] / 255, label=class_names[c]) for c in present
             if c < len(class_names)]
  if handles:
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)


def plot_segmentation_grid(images: np.ndarray, predictions: np.ndarray, truths: np.ndarray | None, path: str,
                           class_names: Sequence[str] = (), title: str = "") -> None:
  """One row per example: the image, the truth overlay (when given) and the prediction overlay; a legend of
  the classes shown.

  Args:
    images: [B, H, W, C] images.
    predictions: [B, H, W] predicted classes.
    truths: [B, H, W] true classes (`IGNORE_INDEX` white), or None.
    path: PNG path.
    class_names: names of the classes, index-aligned (legend).
    title: figure title.
  """
  columns = [("image", None)] + ([("truth", truths)] if truths is not None else []) + [("prediction", predictions)]
  rows = len(images)
  fig, axes = plt.subplots(rows, len(columns), figsize=(2.0 * len(columns), 2.0 * rows + 0.6), squeeze=False)
  for r in range(rows):
    for c, (name, masks) in enumerate(columns):
      ax = axes[r, c]
      ax.imshow(_rgb(images[r]) if masks is None else overlay(images[r], masks[r]), interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0:
        ax.set_title(name, fontsize=9)
  shown = [np.asarray(m) for _, m in columns[1:]]
  present = np.unique(np.concatenate([m.reshape(-1) for m in shown]))
  _legend(fig, class_names or [str(k) for k in range(256)], [int(c) for c in present if c not in (0, IGNORE_INDEX)])
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout(rect=(0, 0.04, 1, 0.97 if title else 1))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_overlay(image: np.ndarray, prediction: np.ndarray, path: str, truth: np.ndarray | None = None,
                 class_names: Sequence[str] = (), title: str = "") -> None:
  """One input's picture: image, prediction overlay and (when known) the truth overlay side by side."""
  plot_segmentation_grid(np.asarray(image)[None], np.asarray(prediction)[None],
                         None if truth is None else np.asarray(truth)[None], path, class_names, title)
