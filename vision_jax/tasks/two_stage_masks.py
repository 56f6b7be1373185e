"""Mask R-CNN's side of the `two_stage` task: gathering bit-packed masks, mask AP, eval_masks.png, and
`--mode=predict` (pictures with boxes and masks, COCO JSON with RLE masks).

Mask AP comes from `vision_jax.evaluation.detection_masks.coco_mask_evaluate` and the COCO result records (RLE
`segmentation` with masks) from `vision_jax.evaluation.coco_results`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from PIL import Image

from vision_jax.evaluation.coco_results import coco_results, write_coco_results
from vision_jax.evaluation.detection_masks import coco_mask_evaluate
from vision_jax.tasks import detection
from vision_jax.tasks.classification_eval import read_image

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


def _records(index: int, path: str, found: Mapping[str, np.ndarray], scale: np.ndarray,
             original_size: tuple[int, int], class_names: Sequence[str]) -> list[dict[str, Any]]:
  """COCO result records of one image's detections, boxes scaled to the original image (RLE masks if any)."""
  valid = found["pred_valid"].astype(bool)
  boxes, scores, labels = found["pred_boxes"][valid] * scale, found["pred_scores"][valid], found["pred_labels"][valid]
  masks = None
  if "pred_masks" in found:  # nearest resize to the original (W, H)
    masks = np.zeros((0, original_size[1], original_size[0]), bool)
    if valid.any():
      masks = np.stack([np.asarray(Image.fromarray(m.astype(np.uint8)).resize(original_size, Image.NEAREST), bool)
                        for m in found["pred_masks"][valid]])
  records = coco_results([index], [boxes], [scores], [labels], masks=None if masks is None else [masks])
  for record in records:
    record.update(file_name=os.path.basename(path), category=class_names[int(record["category_id"])])
  return records


def predict_files(task: Any, state: Any, paths: Sequence[str]) -> list[str]:
  """`--mode=predict` of a `TwoStageTask`: `<image>.detections.png` per file and one detections.json."""
  from vision_jax.plots import annotations  # pylint: disable=import-outside-toplevel
  height, width = task.image_size
  channels = int(task.input_shape[-1])
  run = jax.jit(lambda v, x: task.detect(v, task.input_ops(jax.random.PRNGKey(0), x, False))[1])
  lines, records = [], []
  out_dir = str(task.cfg.predict_dir)
  for index, path in enumerate(paths):
    with Image.open(path) as original:
      original_size = original.size  # (W, H)
    image = read_image(path, (height, width, channels))
    found = {k: np.asarray(v[0]) for k, v in jax.device_get(run(state.variables("model"), image[None])).items()}
    scale = np.array([original_size[0] / width, original_size[1] / height] * 2, np.float32)
    records += _records(index, path, found, scale, original_size, task.class_names)
    where = out_dir or os.path.dirname(os.path.abspath(path))
    os.makedirs(where, exist_ok=True)
    picture = os.path.join(where, os.path.splitext(os.path.basename(path))[0] + ".detections.png")
    valid = found["pred_valid"].astype(bool)
    cell = task._prediction_cell(image, found["pred_boxes"], found["pred_scores"], found["pred_labels"], valid,
                                 os.path.basename(path))
    if "pred_masks" in found:
      keep = valid & (found["pred_scores"] >= detection.PICTURE_SCORE)
      cell["instance_masks"] = found["pred_masks"][keep]
    annotations.plot_annotated_grid([cell], picture, cols=1, cell_inches=4.0)
    lines.append(f"{path}: {int(valid.sum())} detections; wrote {picture}")
  where = out_dir or os.path.dirname(os.path.abspath(paths[0]))
  json_path = os.path.join(where, "detections.json")
  write_coco_results(json_path, records)
  lines[-1] += f"; {json_path}"
  return lines
