"""Semantic-segmentation metrics from a confusion matrix of label maps: IoU per class and its mean, pixel
accuracy, Dice.

`confusion_matrix` runs on device per batch and returns int32 counts; add the batches up on the host (NumPy
int64) and hand the total to `segmentation_metrics`. Mean IoU follows Keras `MeanIoU` and torchmetrics
`MulticlassJaccardIndex(average="macro")`: a class absent from both the predictions and the truth of the whole
evaluation (IoU 0 / 0) is skipped, not counted as 0 or 1. Per-class values of such classes are NaN.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.data.features import IGNORE_INDEX


def confusion_matrix(labels: jax.Array, predictions: jax.Array, num_classes: int, ignore_index: int = IGNORE_INDEX,
                     example_mask: Optional[jax.Array] = None) -> jax.Array:
  """Counts of (true class, predicted class) over the labelled pixels of a batch.

  Args:
    labels: [N, H, W] true classes; `ignore_index` (and any value outside [0, K)) is not counted.
    predictions: [N, H, W] predicted classes in [0, K) (e.g. argmax of the logits).
    num_classes: K.
    ignore_index: label value of unlabelled pixels.
    example_mask: optional [N], 0 for padded examples (not counted).

  Returns:
    [K, K] int32; row = true class, column = predicted class. Exact below 2^31 pixels per call.
  """
  labels = labels.astype(jnp.int32)
  predictions = predictions.astype(jnp.int32)
  valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
  valid &= (predictions >= 0) & (predictions < num_classes)
  if example_mask is not None:
    valid &= example_mask.astype(bool).reshape((-1,) + (1,) * (labels.ndim - 1))
  index = jnp.where(valid, labels * num_classes + predictions, 0)
  counts = jnp.zeros((num_classes * num_classes,), jnp.int32).at[index.reshape(-1)].add(
      valid.reshape(-1).astype(jnp.int32))
  return counts.reshape(num_classes, num_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
  """numerator / denominator, NaN where the denominator is 0."""
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def per_class_iou(confusion: np.ndarray) -> np.ndarray:
  """IoU of each class, TP / (TP + FP + FN).

  Args:
    confusion: [K, K] counts (rows true, columns predicted).

  Returns:
    [K] float64, NaN for classes absent from both truth and predictions.
  """
  confusion = np.asarray(confusion, np.float64)
  true_positive = np.diag(confusion)
  return _ratio(true_positive, confusion.sum(0) + confusion.sum(1) - true_positive)


def per_class_dice(confusion: np.ndarray) -> np.ndarray:
  """Dice (F1) of each class, 2 TP / (2 TP + FP + FN).

  Args:
    confusion: [K, K] counts.

  Returns:
    [K] float64, NaN for classes absent from both truth and predictions.
  """
  confusion = np.asarray(confusion, np.float64)
  true_positive = np.diag(confusion)
  return _ratio(2 * true_positive, confusion.sum(0) + confusion.sum(1))


def _mean_of_present(values: np.ndarray) -> float:
  """Mean over the non-NaN entries; NaN when all are NaN."""
  return float(np.nanmean(values)) if np.any(~np.isnan(values)) else float("nan")


def mean_iou(confusion: np.ndarray) -> float:
  """Mean of `per_class_iou` over the classes present in truth or predictions (Keras / torchmetrics macro).

  Args:
    confusion: [K, K] counts.

  Returns:
    mean IoU; NaN when nothing was counted.
  """
  return _mean_of_present(per_class_iou(confusion))


def mean_dice(confusion: np.ndarray) -> float:
  """Mean of `per_class_dice` ([K, K] counts) over the classes present in truth or predictions; NaN if none."""
  return _mean_of_present(per_class_dice(confusion))


def pixel_accuracy(confusion: np.ndarray) -> float:
  """Fraction of labelled pixels predicted correctly, trace / total (NaN when nothing was counted).

  Args:
    confusion: [K, K] counts.

  Returns:
    accuracy in [0, 1].
  """
  confusion = np.asarray(confusion, np.float64)
  total = confusion.sum()
  return float(np.trace(confusion) / total) if total > 0 else float("nan")


def segmentation_metrics(confusion: np.ndarray, class_names: Sequence[str] = ()) -> dict[str, object]:
  """Every segmentation metric of an accumulated confusion matrix.

  Args:
    confusion: [K, K] counts summed over the evaluation.
    class_names: optional K names for the per-class table (default "0", "1", ...).

  Returns:
    {"mean_iou", "pixel_accuracy", "mean_dice": float, "per_class_iou", "per_class_dice": {name: float (NaN if
    the class never appeared)}}.
  """
  confusion = np.asarray(confusion)
  names = list(class_names) or [str(k) for k in range(confusion.shape[0])]
  return {
      "mean_iou": mean_iou(confusion),
      "pixel_accuracy": pixel_accuracy(confusion),
      "mean_dice": mean_dice(confusion),
      "per_class_iou": dict(zip(names, per_class_iou(confusion).tolist())),
      "per_class_dice": dict(zip(names, per_class_dice(confusion).tolist())),
  }
