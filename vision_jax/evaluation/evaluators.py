"""Evaluators: host-side objects fed the outputs of each eval step (`update`), asked for metrics at the end
(`result`).

A task's eval step returns a dict of arrays for one padded global batch, replicated on every device, so every
process sees the whole batch (the compiled step does the cross-process gather). Two kinds consume them:

  * `SumEvaluator` adds per-batch sums that the step computed on device (accuracy counts, confusion matrices,
    IoU intersections and unions, FID moments): cheap, and exact under any batch size or process count.
  * `GatherEvaluator` keeps the valid rows (`mask`) of per-example outputs ([N, ...] detections, embeddings) and
    hands them, concatenated in dataset order, to a function that needs them all (COCO mAP, one-shot episodes).

A task may use several; their metric names must not collide.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Mapping, Sequence

import numpy as np


class Evaluator(abc.ABC):
  """Accumulates eval-step outputs over one pass and turns them into metrics."""

  @abc.abstractmethod
  def reset(self) -> None:
    """Forgets everything seen (called before each pass)."""

  @abc.abstractmethod
  def update(self, outputs: Mapping[str, np.ndarray]) -> None:
    """Takes the host copy of one eval step's outputs."""

  @abc.abstractmethod
  def result(self) -> dict[str, Any]:
    """Metrics of the pass: scalars (logged, plotted, compared) and arrays (reports)."""


class SumEvaluator(Evaluator):
  """Sums `keys` of every batch's outputs; `finish(totals)` turns the totals into metrics.

  Args:
    keys: output keys holding per-batch sums (scalars or arrays of a fixed shape).
    finish: totals {key: float64 array} -> metrics.
  """

  def __init__(self, keys: Sequence[str], finish: Callable[[dict[str, np.ndarray]], dict[str, Any]]):
    self.keys, self.finish = tuple(keys), finish
    self.reset()

  def reset(self) -> None:
    self.totals: dict[str, np.ndarray] | None = None

  def update(self, outputs: Mapping[str, np.ndarray]) -> None:
    sums = {k: np.asarray(outputs[k], np.float64) for k in self.keys}
    self.totals = sums if self.totals is None else {k: self.totals[k] + sums[k] for k in self.keys}

  def result(self) -> dict[str, Any]:
    if self.totals is None:
      raise ValueError("SumEvaluator.result() before any update(): the eval split produced no batch")
    return self.finish(self.totals)


class GatherEvaluator(Evaluator):
  """Keeps the valid rows of per-example outputs; `finish(rows)` computes metrics from all of them.

  Args:
    keys: output keys holding per-example arrays [N, ...] (N = the global eval batch).
    finish: {key: [num_valid_examples, ...]} in dataset order -> metrics.
    mask_key: output key of the [N] validity mask (padding rows of the last batch are False).
  """

  def __init__(self, keys: Sequence[str], finish: Callable[[dict[str, np.ndarray]], dict[str, Any]],
               mask_key: str = "mask"):
    self.keys, self.finish, self.mask_key = tuple(keys), finish, mask_key
    self.reset()

  def reset(self) -> None:
    self.rows: dict[str, list[np.ndarray]] = {k: [] for k in self.keys}

  def update(self, outputs: Mapping[str, np.ndarray]) -> None:
    valid = np.asarray(outputs[self.mask_key]).astype(bool)
    for key in self.keys:
      self.rows[key].append(np.asarray(outputs[key])[valid])

  def gathered(self) -> dict[str, np.ndarray]:
    """Every valid row seen so far, {key: [num_valid, ...]}."""
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in self.rows.items()}

  def result(self) -> dict[str, Any]:
    return self.finish(self.gathered())


class FirstExamplesEvaluator(Evaluator):
  """Keeps the first `count` valid rows of per-example outputs (the pictures of a report).

  Args:
    keys: output keys of per-example arrays [N, ...].
    count: rows kept.
    prefix: prepended to the keys in the result.
  """

  def __init__(self, keys: Sequence[str], count: int, prefix: str = "grid_"):
    self.keys, self.count, self.prefix = tuple(keys), count, prefix
    self.reset()

  def reset(self) -> None:
    self.rows: dict[str, list[np.ndarray]] = {k: [] for k in self.keys}
    self.kept = 0

  def update(self, outputs: Mapping[str, np.ndarray]) -> None:
    if self.kept >= self.count:
      return
    valid = np.flatnonzero(np.asarray(outputs["mask"]).astype(bool))[:self.count - self.kept]
    for key in self.keys:
      self.rows[key].append(np.asarray(outputs[key])[valid])
    self.kept += len(valid)

  def result(self) -> dict[str, Any]:
    return {self.prefix + k: np.concatenate(v) for k, v in self.rows.items() if v and self.kept}


def coco_detection_metrics(rows: Mapping[str, np.ndarray], category_ids: Sequence[int] | None = None,
                           prefix: str = "") -> dict[str, float]:
  """COCO box AP/AR (`coco_evaluate`) of padded per-image predictions and ground truth.

  Args:
    rows: per image (in dataset order): `pred_boxes` [N, D, 4] xyxy pixels, `pred_scores` [N, D],
      `pred_labels` [N, D] (class index), `pred_valid` [N, D] bool; `boxes` [N, M, 4], `box_labels` [N, M]
      (-1 in padding) and optionally `num_objects` [N] and `iscrowd` [N, M].
    category_ids: COCO category id of each class index (default: the index itself).
    prefix: prepended to every metric name.

  Returns:
    The 12 COCO statistics (AP, AP50, ..., ARl), -1 where undefined, each named `prefix + name`.
  """
  from vision_jax.evaluation.detection_coco import coco_evaluate  # pylint: disable=import-outside-toplevel
  to_id = (lambda c: int(category_ids[c])) if category_ids is not None else int
  num_images, num_gt = rows["boxes"].shape[:2]
  counts = rows["num_objects"] if "num_objects" in rows else (rows["box_labels"] >= 0).sum(-1)
  num_classes = int(max(rows["box_labels"].max(initial=-1), rows["pred_labels"].max(initial=-1))) + 1
  images = [{"id": i} for i in range(num_images)]
  annotations, detections = [], []
  for i in range(num_images):
    for j in range(min(int(counts[i]), num_gt)):
      x1, y1, x2, y2 = (float(v) for v in rows["boxes"][i, j])
      crowd = int(rows["iscrowd"][i, j]) if "iscrowd" in rows else 0
      annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": to_id(rows["box_labels"][i, j]),
                          "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": crowd})
    for j in np.flatnonzero(rows["pred_valid"][i]):
      x1, y1, x2, y2 = (float(v) for v in rows["pred_boxes"][i, j])
      detections.append({"image_id": i, "category_id": to_id(rows["pred_labels"][i, j]),
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(rows["pred_scores"][i, j])})
  ids = list(category_ids) if category_ids is not None else list(range(max(num_classes, 1)))
  stats = coco_evaluate({"images": images, "annotations": annotations,
                         "categories": [{"id": int(c)} for c in ids]}, detections)
  return {prefix + k: float(v) for k, v in stats.items()}


def merge_results(evaluators: Sequence[Evaluator]) -> dict[str, Any]:
  """The union of the evaluators' results; a metric name produced twice is an error."""
  merged: dict[str, Any] = {}
  for evaluator in evaluators:
    result = evaluator.result()
    clash = set(result) & set(merged)
    if clash:
      raise ValueError(f"evaluators report the same metrics {sorted(clash)}; prefix one of them")
    merged.update(result)
  return merged
