"""Classification metrics: top-k correctness and confusion matrices on batches, per-class precision/recall/F1."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def correct(logits: jax.Array, labels: jax.Array, k: int = 1) -> jax.Array:
  """Whether the label is among the k highest logits.

  Args:
    logits: [N, K] scores.
    labels: [N] integer classes.
    k: how many top classes count as a hit (1 = accuracy).

  Returns:
    [N] float32, 1.0 for a hit. Ties are broken towards the lower class index, as `argmax` does.
  """
  if k == 1:
    return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  _, top = jax.lax.top_k(logits, k)
  return jnp.any(top == labels[:, None], axis=-1).astype(jnp.float32)


def confusion_matrix(labels: jax.Array, predictions: jax.Array, num_classes: int,
                     weights: jax.Array | None = None) -> jax.Array:
  """Counts of (true class, predicted class) pairs.

  Args:
    labels: [N] true classes.
    predictions: [N] predicted classes.
    num_classes: K.
    weights: optional [N] weights (0 for padding).

  Returns:
    [K, K] float32; row = true class, column = predicted class.
  """
  if weights is None:
    weights = jnp.ones(labels.shape, jnp.float32)
  index = labels * num_classes + predictions
  counts = jnp.zeros((num_classes * num_classes,), jnp.float32).at[index].add(weights)
  return counts.reshape(num_classes, num_classes)


def precision_recall_f1(confusion: np.ndarray) -> dict[str, np.ndarray]:
  """Per-class precision, recall and F1 from a confusion matrix (rows true, columns predicted).

  A class with no predictions has precision 0, one with no examples recall 0, and F1 is 0 where precision +
  recall is 0 (scikit-learn's `zero_division=0` convention).

  Args:
    confusion: [K, K] counts.

  Returns:
    {"precision", "recall", "f1": [K] float64, "support": [K] int64 (examples per true class)}.
  """
  confusion = np.asarray(confusion, np.float64)
  hits = np.diag(confusion)
  predicted, support = confusion.sum(0), confusion.sum(1)
  precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
  recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
  both = precision + recall
  f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
  return {"precision": precision, "recall": recall, "f1": f1, "support": support.round().astype(np.int64)}


def per_class_report(metrics: dict[str, Any], class_names: Sequence[str]) -> dict[str, dict[str, float]]:
  """{class name: {"precision", "recall", "f1", "support"}} from the `per_class_*` arrays of eval metrics."""
  return {name: {key: (int if key == "support" else float)(metrics[f"per_class_{key}"][i])
                 for key in ("precision", "recall", "f1", "support")}
          for i, name in enumerate(class_names)}


def format_per_class(report: dict[str, dict[str, float]]) -> str:
  """The per-class report as an aligned text table, one class a line."""
  width = max([5] + [len(name) for name in report])
  lines = [f"{'class':<{width}}  precision  recall      f1  support"]
  for name, row in report.items():
    lines.append(f"{name:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}  "
                 f"{row['support']:7d}")
  return "\n".join(lines)
