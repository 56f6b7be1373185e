"""Semantic-segmentation losses on [N, H, W, K] logits and [N, H, W] integer label maps, computed in float32.

Pixels labelled `ignore_index` (VOC's 255, `vision_jax.data.features.IGNORE_INDEX`) and pixels of padded
examples (`example_mask` 0) count nowhere: not in a numerator, not in a normaliser. Label values outside
[0, K) other than the ignore index are not checked (inside jit they cannot be) and are treated as ignored.
Where nothing is left to average, the losses return 0 rather than PyTorch's NaN, so a batch of padding cannot
poison training.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from vision_jax.data.features import IGNORE_INDEX
from vision_jax.errors import ConfigError


def _valid_pixels(labels: jax.Array, num_classes: int, ignore_index: int,
                  example_mask: Optional[jax.Array]) -> tuple[jax.Array, jax.Array]:
  """[N, H, W] float32 validity and labels clamped into [0, K) (their value is irrelevant where invalid)."""
  labels = labels.astype(jnp.int32)
  valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
  valid = valid.astype(jnp.float32)
  if example_mask is not None:
    valid = valid * example_mask.astype(jnp.float32).reshape((-1,) + (1,) * (labels.ndim - 1))
  return valid, jnp.clip(labels, 0, num_classes - 1)


def _safe_divide(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
  return jnp.where(denominator > 0, numerator / jnp.where(denominator > 0, denominator, 1.0), 0.0)


def pixel_cross_entropy(logits: jax.Array, labels: jax.Array, class_weights: Optional[jax.Array] = None,
                        ignore_index: int = IGNORE_INDEX, example_mask: Optional[jax.Array] = None) -> jax.Array:
  """Softmax cross-entropy averaged over labelled pixels, weighted as PyTorch's
  `F.cross_entropy(weight=w, ignore_index=i)`: sum(w[y] * nll) / sum(w[y]) over non-ignored pixels.

  Args:
    logits: [N, H, W, K] scores.
    labels: [N, H, W] integer classes, `ignore_index` where unlabelled.
    class_weights: optional [K] weight of each true class (e.g. inverse frequency).
    ignore_index: label value that contributes nothing.
    example_mask: optional [N], 0 for padded examples.

  Returns:
    [] float32 loss (0 when no pixel is labelled).
  """
  num_classes = logits.shape[-1]
  valid, safe_labels = _valid_pixels(labels, num_classes, ignore_index, example_mask)
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(log_probs, safe_labels[..., None], axis=-1)[..., 0]
  weight = valid if class_weights is None else valid * jnp.asarray(class_weights, jnp.float32)[safe_labels]
  return _safe_divide(jnp.sum(weight * nll), jnp.sum(weight))


def focal_loss(logits: jax.Array, labels: jax.Array, gamma: float = 2.0,
               alpha: Union[None, float, Sequence[float], jax.Array] = None, ignore_index: int = IGNORE_INDEX,
               example_mask: Optional[jax.Array] = None) -> jax.Array:
  """Softmax focal loss (Lin et al., 2017) -alpha[y] (1 - p_y)^gamma log p_y, mean over labelled pixels.

  gamma = 0 and alpha None is plain cross-entropy. The mean is over pixels (not over alpha weights), as in the
  common PyTorch form `(alpha[y] * (1 - exp(-ce))**gamma * ce).mean()` restricted to labelled pixels.

  Args:
    logits: [N, H, W, K] scores.
    labels: [N, H, W] integer classes, `ignore_index` where unlabelled.
    gamma: focusing exponent (>= 0).
    alpha: None, one weight for every class, or [K] per-class weights.
    ignore_index: label value that contributes nothing.
    example_mask: optional [N], 0 for padded examples.

  Returns:
    [] float32 loss.
  """
  num_classes = logits.shape[-1]
  valid, safe_labels = _valid_pixels(labels, num_classes, ignore_index, example_mask)
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  log_p_true = jnp.take_along_axis(log_probs, safe_labels[..., None], axis=-1)[..., 0]
  modulating = (-jnp.expm1(log_p_true)) ** gamma  # (1 - p)^gamma, accurate when p is near 1
  loss = -modulating * log_p_true
  if alpha is not None:
    alpha = jnp.asarray(alpha, jnp.float32)
    loss = loss * (alpha[safe_labels] if alpha.ndim else alpha)
  return _safe_divide(jnp.sum(valid * loss), jnp.sum(valid))


def sigmoid_focal_loss(logits: jax.Array, targets: jax.Array, alpha: float = 0.25, gamma: float = 2.0,
                       reduction: str = "mean") -> jax.Array:
  """Binary focal loss on independent sigmoid outputs, as `torchvision.ops.sigmoid_focal_loss`.

  loss = alpha_t (1 - p_t)^gamma BCE, alpha_t = alpha for targets 1 and 1 - alpha for 0; alpha < 0 disables it.

  Args:
    logits: [...] scores.
    targets: [...] 0/1 (or soft) targets, same shape.
    alpha: positive-class weight in [0, 1], or negative for none.
    gamma: focusing exponent.
    reduction: "none" ([...] losses), "mean" or "sum" ([]).

  Returns:
    float32 losses reduced as asked.
  """
  logits = logits.astype(jnp.float32)
  targets = targets.astype(jnp.float32)
  prob = jax.nn.sigmoid(logits)
  bce = jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))
  p_true = prob * targets + (1 - prob) * (1 - targets)
  loss = bce * (1 - p_true) ** gamma
  if alpha >= 0:
    loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
  if reduction == "none":
    return loss
  if reduction == "mean":
    return jnp.mean(loss)
  if reduction == "sum":
    return jnp.sum(loss)
  raise ConfigError(f"unknown reduction {reduction!r}; use none, mean or sum")


def _overlap_terms(logits: jax.Array, labels: jax.Array, ignore_index: int, example_mask: Optional[jax.Array],
                   per_image: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Soft intersection, predicted mass and true mass per class: each [K] or, per image, [N, K]."""
  num_classes = logits.shape[-1]
  valid, safe_labels = _valid_pixels(labels, num_classes, ignore_index, example_mask)
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1) * valid[..., None]
  truth = jax.nn.one_hot(safe_labels, num_classes, dtype=jnp.float32) * valid[..., None]
  axes = tuple(range(1, logits.ndim - 1)) if per_image else tuple(range(logits.ndim - 1))
  return jnp.sum(probs * truth, axes), jnp.sum(probs, axes), jnp.sum(truth, axes)


def dice_loss(logits: jax.Array, labels: jax.Array, smooth: float = 1.0, ignore_index: int = IGNORE_INDEX,
              example_mask: Optional[jax.Array] = None, per_image: bool = False) -> jax.Array:
  """Soft Dice loss (Milletari et al., 2016, squares dropped): 1 - mean_k (2 I_k + s) / (P_k + T_k + s).

  I_k = sum p_k * [y = k], P_k = sum p_k, T_k = sum [y = k] over labelled pixels, p = softmax(logits). Every class
  counts in the mean; a class absent from truth scores near 1 when predicted near nowhere (thanks to `smooth`).

  Args:
    logits: [N, H, W, K] scores.
    labels: [N, H, W] integer classes, `ignore_index` where unlabelled.
    smooth: s, added to numerator and denominator (> 0 keeps empty classes finite).
    ignore_index: label value that contributes nothing.
    example_mask: optional [N], 0 for padded examples (with `per_image`, they are also left out of the mean).
    per_image: sums per image and averages the per-image losses, instead of pooling the batch.

  Returns:
    [] float32 loss.
  """
  intersection, predicted, true = _overlap_terms(logits, labels, ignore_index, example_mask, per_image)
  dice = (2 * intersection + smooth) / (predicted + true + smooth)
  return _mean_loss(1.0 - jnp.mean(dice, -1), example_mask, per_image)


def jaccard_loss(logits: jax.Array, labels: jax.Array, smooth: float = 1.0, ignore_index: int = IGNORE_INDEX,
                 example_mask: Optional[jax.Array] = None, per_image: bool = False) -> jax.Array:
  """Soft Jaccard (IoU) loss: 1 - mean_k (I_k + s) / (P_k + T_k - I_k + s), terms as in `dice_loss`.

  Args:
    logits: [N, H, W, K] scores.
    labels: [N, H, W] integer classes, `ignore_index` where unlabelled.
    smooth: s, added to numerator and denominator.
    ignore_index: label value that contributes nothing.
    example_mask: optional [N], 0 for padded examples.
    per_image: sums per image and averages the per-image losses, instead of pooling the batch.

  Returns:
    [] float32 loss.
  """
  intersection, predicted, true = _overlap_terms(logits, labels, ignore_index, example_mask, per_image)
  iou = (intersection + smooth) / (predicted + true - intersection + smooth)
  return _mean_loss(1.0 - jnp.mean(iou, -1), example_mask, per_image)


def _mean_loss(loss: jax.Array, example_mask: Optional[jax.Array], per_image: bool) -> jax.Array:
  if not per_image:
    return loss
  if example_mask is None:
    return jnp.mean(loss)
  weights = example_mask.astype(jnp.float32)
  return _safe_divide(jnp.sum(weights * loss), jnp.sum(weights))


LOSSES: dict[str, Callable[..., jax.Array]] = {
    "cross_entropy": pixel_cross_entropy,
    "focal": focal_loss,
    "dice": dice_loss,
    "jaccard": jaccard_loss,
}


def combined_loss(logits: jax.Array, labels: jax.Array, weights: Mapping[str, float],
                  options: Optional[Mapping[str, Mapping]] = None, ignore_index: int = IGNORE_INDEX,
                  example_mask: Optional[jax.Array] = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Weighted sum of named segmentation losses, e.g. {"cross_entropy": 1.0, "dice": 0.5}.

  Args:
    logits: [N, H, W, K] scores.
    labels: [N, H, W] integer classes.
    weights: loss name (`LOSSES` keys) -> weight.
    options: optional loss name -> keyword arguments of that loss (e.g. {"focal": {"gamma": 1.0}}).
    ignore_index: label value that contributes nothing, passed to every loss.
    example_mask: optional [N], 0 for padded examples, passed to every loss.

  Returns:
    ([] total, {name: [] unweighted loss}).
  """
  options = dict(options or {})
  unknown = sorted(set(weights) - set(LOSSES)) + sorted(set(options) - set(weights))
  if unknown:
    raise ConfigError(f"unknown or unweighted segmentation loss {unknown[0]!r}; weight one of "
                      f"{', '.join(LOSSES)}")
  parts = {name: LOSSES[name](logits, labels, ignore_index=ignore_index, example_mask=example_mask,
                              **dict(options.get(name, {})))
           for name in weights}
  total = sum((float(weights[name]) * value for name, value in parts.items()), jnp.zeros((), jnp.float32))
  return total, parts
