"""Mask R-CNN's side of the `two_stage` task: gathering bit-packed masks, mask AP and eval_masks.png.

Mask AP comes from `vision_jax.evaluation.detection_masks.coco_mask_evaluate`; predict is the detection task's
(`detection.predict_files`: its COCO records carry RLE `segmentation`s when the detections have masks).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from vision_jax.evaluation.detection_masks import coco_mask_evaluate
from vision_jax.tasks import detection

MASK_KEYS = ("pred_mask_bits", "truth_mask_bits")


def unpack_masks(bits: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
  """uint8 bits [..., H * W / 8] (`two_stage.pack_masks`) -> bool masks [..., H, W]."""
  h, w = image_size
  return np.unpackbits(np.asarray(bits, np.uint8), axis=-1)[..., :h * w].reshape(*bits.shape[:-1], h, w).astype(bool)


def mask_metrics(rows: Mapping[str, np.ndarray], image_size: tuple[int, int]) -> dict[str, float]:
  """Mask COCO AP/AR of gathered rows (bit-packed masks), named "mask_AP", "mask_AP50", ..."""
  truth, found = [], []
  for i in range(len(rows["boxes"])):
    count = int(rows["num_objects"][i])
    truth.append({"image_id": i, "labels": rows["box_labels"][i, :count],
                  "masks": unpack_masks(rows["truth_mask_bits"][i, :count], image_size)})
    valid = rows["pred_valid"][i].astype(bool)
    found.append({"image_id": i, "labels": rows["pred_labels"][i][valid], "scores": rows["pred_scores"][i][valid],
                  "masks": unpack_masks(rows["pred_mask_bits"][i][valid], image_size)})
  stats = coco_mask_evaluate(truth, found)
  return {f"mask_{k}": float(v) for k, v in stats.items()}


class MaskDetectionEvaluator(detection.DetectionEvaluator):
  """`DetectionEvaluator` that also gathers the bit-packed predicted and true masks: box and mask metrics."""

  def __init__(self, image_size: tuple[int, int], num_pictures: int):
    self.image_size = tuple(image_size)
    super().__init__(self._finish, num_pictures)
    self.keys = self.keys + MASK_KEYS
    self.reset()

  def _finish(self, rows: Mapping[str, np.ndarray]) -> dict[str, Any]:
    return {**detection.detection_metrics(rows), **mask_metrics(rows, self.image_size)}

  def result(self) -> dict[str, Any]:
    metrics = super().result()
    if "picture_images" in metrics:
      count = len(metrics["picture_images"])
      rows = {k: self.rows[k] for k in MASK_KEYS}
      for key, name in zip(MASK_KEYS, ("picture_pred_masks", "picture_truth_masks")):
        metrics[name] = unpack_masks(np.concatenate(rows[key])[:count], self.image_size)
    return metrics


def write_mask_grid(workdir: str, metrics: Mapping[str, Any], class_names: Sequence[str],
                    summary: dict[str, Any]) -> str:
  """eval_masks.png: per test scene, the predicted masks (score >= `detection.PICTURE_SCORE`) tinted per instance
  with their boxes, beside the true masks."""
  from vision_jax.plots import annotations  # pylint: disable=import-outside-toplevel
  cells = []
  for i, image in enumerate(metrics["picture_images"]):
    scores = metrics["picture_pred_scores"][i]
    keep = np.flatnonzero(metrics["picture_pred_valid"][i] & (scores >= detection.PICTURE_SCORE))
    labels = metrics["picture_pred_labels"][i]
    cells.append({"image": image, "boxes": metrics["picture_pred_boxes"][i][keep], "box_labels": np.arange(len(keep)),
                  "class_names": [f"{class_names[int(labels[j])]} {float(scores[j]):.2f}" for j in keep],
                  "instance_masks": metrics["picture_pred_masks"][i][keep], "title": "predicted masks"})
    cells.append({"image": image, "boxes": metrics["picture_boxes"][i], "box_labels": metrics["picture_box_labels"][i],
                  "num_objects": int(metrics["picture_num_objects"][i]), "class_names": class_names,
                  "instance_masks": metrics["picture_truth_masks"][i], "title": "true masks"})
  path = os.path.join(workdir, "eval_masks.png")
  annotations.plot_annotated_grid(cells, path, cols=4)
  summary["eval_masks_png"] = path
  return path

