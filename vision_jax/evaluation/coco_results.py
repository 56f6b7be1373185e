"""Detections as COCO result records (what `COCO.loadRes` and the COCO evaluation server read), and their file.

A record is {"image_id", "category_id", "bbox": [x, y, width, height], "score"} plus, for instance masks,
"segmentation": a compressed RLE {"size": [H, W], "counts": str} of the mask in the image's own pixels.
Note for pycocotools users: `loadRes` takes a result's area from its "bbox" when there is one, so mask AP with
size ranges by mask area (as `detection_masks.coco_mask_evaluate` computes it) needs the "bbox" keys dropped.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Sequence

import numpy as np

from vision_jax.data.formats.rle import encode_mask
from vision_jax.errors import DataError


def coco_results(image_ids: Sequence[int], boxes: Sequence[np.ndarray], scores: Sequence[np.ndarray],
                 labels: Sequence[np.ndarray], masks: Sequence[np.ndarray] | None = None,
                 class_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
  """COCO result records of per-image detections, in image order, then detection order.

  Args:
    image_ids: [N] the COCO image id of each image.
    boxes: per image [D_i, 4] x1, y1, x2, y2 in the image's pixels (a padded [N, D, 4] array works too).
    scores: per image [D_i].
    labels: per image [D_i] class indices; negative labels mark padding and are skipped.
    masks: optional, per image [D_i, H_i, W_i] masks in the image's pixels: bool, or probabilities kept where
      > 0.5 (torchvision's COCO evaluation rule).
    class_ids: the COCO category id of each class index (default: the index itself).

  Returns:
    A list of {"image_id", "category_id", "bbox" [x, y, w, h], "score"[, "segmentation"]} dicts of Python
    numbers, ready for `json.dump` and `COCO.loadRes`.

  Raises:
    DataError: per-image sequences of different lengths or arrays whose detection counts disagree.
  """
  lengths = {len(image_ids), len(boxes), len(scores), len(labels)} | ({len(masks)} if masks is not None else set())
  if len(lengths) != 1:
    raise DataError(f"coco_results got {len(image_ids)} image ids, {len(boxes)} box sets, {len(scores)} score sets "
                    f"and {len(labels)} label sets{'' if masks is None else f', {len(masks)} mask sets'}: "
                    "give one entry per image")
  records: list[dict[str, Any]] = []
  for i, image_id in enumerate(image_ids):
    box, score, label = np.asarray(boxes[i], np.float64).reshape(-1, 4), np.asarray(scores[i]), np.asarray(labels[i])
    mask = None if masks is None else np.asarray(masks[i])
    counts = {len(box), len(score), len(label)} | (set() if mask is None else {len(mask)})
    if len(counts) != 1:
      raise DataError(f"image {image_id}: {len(box)} boxes, {len(score)} scores, {len(label)} labels"
                      f"{'' if mask is None else f', {len(mask)} masks'}; give one of each per detection")
    for j in np.flatnonzero(label >= 0):
      x1, y1, x2, y2 = (float(v) for v in box[j])
      category = int(class_ids[int(label[j])]) if class_ids is not None else int(label[j])
      record = {"image_id": int(image_id), "category_id": category, "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(score[j])}
      if mask is not None:
        binary = mask[j] > 0.5 if np.issubdtype(mask.dtype, np.floating) else mask[j].astype(bool)
        record["segmentation"] = encode_mask(binary)
      records.append(record)
  return records


def write_coco_results(path: str, records: Sequence[dict[str, Any]]) -> None:
  """Writes result records as one JSON list, atomically (a temporary file in the same folder, then a rename).

  Args:
    path: the .json file to write; its folder is created if missing.
    records: the output of `coco_results` (or any JSON-serialisable dicts).
  """
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  handle, tmp = tempfile.mkstemp(prefix=".coco_results.", suffix=".tmp", dir=folder)
  try:
    with os.fdopen(handle, "w", encoding="utf-8") as f:
      json.dump(list(records), f)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
