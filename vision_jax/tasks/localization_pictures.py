"""Pictures of the localization task: an eval grid of true (solid) versus predicted (dashed) boxes and keypoints,
and a prediction drawn on an input image (PIL, upscaled so that labels are legible)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib import patches
import matplotlib.pyplot as plt
from PIL import Image, ImageDraw

from vision_jax.plots.annotations import annotated_grid_figure

PRED_COLOR = (1.0, 0.2, 0.2)


def _title(cell: dict[str, Any], class_names: Sequence[str]) -> str:
  true, pred = int(cell["label"]), int(cell["pred_label"])
  return f"true {class_names[true]} / pred {class_names[pred]} {float(cell['pred_score']):.2f}"


def plot_grid(cells: Sequence[dict[str, Any]], path: str, class_names: Sequence[str],
              keypoint_names: Sequence[str] = (), cols: int = 4) -> None:
  """Writes a PNG grid: each cell the image with its true box/keypoints (object colours, solid) and the predicted
  box (red, dashed) and predicted keypoints (red crosses, where predicted visible with probability >= 0.5).

  Args:
    cells: dicts with image [H, W, C], label, box [4], pred_label, pred_score, pred_box [4] and optionally
      keypoints [K, 3] and pred_keypoints [K, 3] (x, y, visibility probability), all in pixels.
    path: the PNG to write.
    class_names: names of the classes.
    keypoint_names: names of the keypoints.
    cols: cells per row.
  """
  examples = [{"image": c["image"], "boxes": np.asarray(c["box"])[None], "box_labels": np.array([c["label"]]),
               "title": _title(c, class_names), **({"keypoints": c["keypoints"]} if "keypoints" in c else {})}
              for c in cells]
  fig = annotated_grid_figure(examples, cols=cols, cell_inches=2.2, class_names=tuple(class_names),
                              keypoint_names=tuple(keypoint_names))
  for ax, cell in zip(fig.axes, cells):
    x1, y1, x2, y2 = np.asarray(cell["pred_box"], np.float64)
    ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=PRED_COLOR,
                                   linewidth=1.0, linestyle="--"))
    if "pred_keypoints" in cell:
      shown = np.asarray(cell["pred_keypoints"], np.float64)
      shown = shown[shown[:, 2] >= 0.5]
      ax.plot(shown[:, 0] - 0.5, shown[:, 1] - 0.5, "x", color=PRED_COLOR, markersize=4, markeredgewidth=1.0)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def draw_detections(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                    class_names: Sequence[str], keypoints: np.ndarray | None = None, scale: int = 4) -> np.ndarray:
  """An RGB uint8 picture [scale*H, scale*W, 3] of image [H, W, C] with boxes [D, 4] (pixels), their class
  names and scores, and keypoints [K, 3] (x, y, visibility probability) drawn where visible with p >= 0.5."""
  image = np.asarray(image)
  rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3]
  picture = Image.fromarray(rgb.astype(np.uint8)).resize((rgb.shape[1] * scale, rgb.shape[0] * scale),
                                                          Image.NEAREST)
  draw = ImageDraw.Draw(picture)
  red = tuple(int(255 * c) for c in PRED_COLOR)
  for box, label, score in zip(np.asarray(boxes, np.float64), labels, scores):
    corners = [float(v) * scale for v in box]
    draw.rectangle(corners, outline=red, width=2)
    draw.text((corners[0] + 2, max(corners[1] - 12, 0)), f"{class_names[int(label)]} {float(score):.2f}", fill=red)
  for x, y, visible in np.asarray(keypoints if keypoints is not None else np.zeros((0, 3)), np.float64):
    if visible >= 0.5:
      draw.ellipse([x * scale - 3, y * scale - 3, x * scale + 3, y * scale + 3], outline=(60, 200, 255), width=2)
  return np.asarray(picture)


def draw_prediction(cell: dict[str, Any], class_names: Sequence[str], scale: int = 4) -> np.ndarray:
  """`draw_detections` of one localisation prediction (pred_box, pred_label, pred_score, pred_keypoints)."""
  return draw_detections(cell["image"], np.asarray(cell["pred_box"])[None], [cell["pred_label"]],
                         [cell["pred_score"]], class_names, cell.get("pred_keypoints"), scale)


def plot_detections(rows: dict[str, np.ndarray], path: str, class_names: Sequence[str],
                    min_score: float = 0.0) -> None:
  """Writes a PNG with, per scene, the truth (boxes, box_labels, num_objects) beside the valid detections
  (pred_boxes, pred_labels, pred_scores, pred_valid) scoring at least `min_score`, two cells per scene, four cells
  per row; a cell's title gives its four best scores."""
  cells = []
  shown = f" (>= {min_score:.2f})" if min_score > 0 else ""
  for i in range(len(rows["image"])):
    cells.append({"image": rows["image"][i], "boxes": rows["boxes"][i], "box_labels": rows["box_labels"][i],
                  "num_objects": int(rows["num_objects"][i]), "title": f"truth {i}"})
    valid = np.flatnonzero(rows["pred_valid"][i] & (rows["pred_scores"][i] >= min_score))
    scores = ", ".join(f"{s:.2f}" for s in rows["pred_scores"][i][valid][:4])
    cells.append({"image": rows["image"][i], "boxes": rows["pred_boxes"][i][valid],
                  "box_labels": rows["pred_labels"][i][valid], "title": f"predicted {i}{shown}: {scores}"})
  fig = annotated_grid_figure(cells, cols=4, cell_inches=2.4, class_names=tuple(class_names))
  fig.savefig(path, dpi=110)
  plt.close(fig)
