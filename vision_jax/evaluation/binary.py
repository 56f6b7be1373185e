"""Binary classification metrics that add up over batches: accuracy and a histogram-based ROC AUC.

The AUC is the probability that a random positive scores above a random negative (ties count one half;
Hanley & McNeil, "The meaning and use of the area under a ROC curve", Radiology 1982). Eval batches only add
per-class histograms of the predicted probability, so the AUC of a whole split comes from summed histograms:
it is exact for scores that fall in distinct bins and treats scores within one bin as tied.

Example:
  >>> pos, neg = score_histograms(jnp.array([2.0, -1.0, 0.5]), jnp.array([1, 0, 0]), jnp.ones(3))
  >>> float(auc_from_histograms(pos, neg))
  1.0
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

AUC_BINS = 1000


def binary_correct(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """[N] float32, 1.0 where the prediction (logit > 0) equals the 0/1 target."""
  return ((logits > 0) == (targets > 0)).astype(jnp.float32)


def score_histograms(logits: jax.Array, targets: jax.Array, weights: jax.Array,
                     bins: int = AUC_BINS) -> tuple[jax.Array, jax.Array]:
  """Weighted histograms of sigmoid(logits) over `bins` equal bins of [0, 1], for positives and negatives.

  Args:
    logits: [N] binary logits.
    targets: [N] 0/1 targets.
    weights: [N] example weights (0 for padding).
    bins: number of bins.

  Returns:
    (positives, negatives): float32 [bins] each.
  """
  index = jnp.clip(jnp.floor(jax.nn.sigmoid(logits.astype(jnp.float32)) * bins), 0, bins - 1).astype(jnp.int32)
  positive = (targets > 0).astype(jnp.float32) * weights
  empty = jnp.zeros((bins,), jnp.float32)
  return empty.at[index].add(positive), empty.at[index].add(weights - positive)


def auc_from_histograms(positives: np.ndarray, negatives: np.ndarray) -> float:
  """ROC AUC from score histograms (bins in increasing score order); NaN without both classes.

  Args:
    positives: [B] counts (or weights) of positive examples per score bin.
    negatives: [B] the same for negatives.

  Returns:
    sum over bins of pos * (negatives in lower bins + half the negatives in the same bin) / (P * N).
  """
  positives, negatives = np.asarray(positives, np.float64), np.asarray(negatives, np.float64)
  total_pos, total_neg = positives.sum(), negatives.sum()
  if total_pos <= 0 or total_neg <= 0:
    return float("nan")
  below = np.cumsum(negatives) - negatives
  return float(np.sum(positives * (below + 0.5 * negatives)) / (total_pos * total_neg))
