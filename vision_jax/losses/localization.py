"""Losses of single-object localisation and landmark regression: smooth-L1 (Huber-like, Girshick 2015), the
GIoU box loss (Rezatofighi et al., 2019) and a visibility-aware keypoint loss.

All take arrays and return per-example losses [N]; the batch mean is the caller's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vision_jax.ops.boxes import elementwise_generalized_box_iou


def smooth_l1(predictions: jax.Array, targets: jax.Array, beta: float = 1.0) -> jax.Array:
  """Elementwise smooth-L1: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (torch's `smooth_l1_loss`).

  Args:
    predictions: [...] values.
    targets: [...] values of the same shape.
    beta: where the quadratic part turns linear (> 0; beta -> 0 gives L1).

  Returns:
    [...] float32 losses.
  """
  diff = jnp.abs(predictions.astype(jnp.float32) - targets.astype(jnp.float32))
  return jnp.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


def box_smooth_l1(predicted: jax.Array, target: jax.Array, beta: float = 1.0) -> jax.Array:
  """Smooth-L1 summed over the 4 coordinates of each box.

  Args:
    predicted: [N, 4] boxes.
    target: [N, 4] boxes in the same coordinates.
    beta: see `smooth_l1`.

  Returns:
    [N] losses.
  """
  return jnp.sum(smooth_l1(predicted, target, beta), -1)


def giou_loss(predicted: jax.Array, target: jax.Array) -> jax.Array:
  """1 - GIoU of matching xyxy boxes [N, 4] -> [N] (0 for identical boxes, up to 2 for far-apart ones)."""
  return 1.0 - elementwise_generalized_box_iou(predicted.astype(jnp.float32), target.astype(jnp.float32))


def keypoint_loss(predicted: jax.Array, keypoints: jax.Array, beta: float = 1.0) -> jax.Array:
  """Smooth-L1 of the visible keypoints' coordinates, averaged over each example's visible keypoints.

  Args:
    predicted: [N, K, 2] predicted x, y.
    keypoints: [N, K, 3] true x, y (same units) and visibility (0 or 1); invisible points add nothing.
    beta: see `smooth_l1`.

  Returns:
    [N] losses: sum_k v_k (sl1(dx_k) + sl1(dy_k)) / max(1, sum_k v_k); 0 for an example with no visible point.
  """
  visible = (keypoints[..., 2] > 0).astype(jnp.float32)
  per_point = jnp.sum(smooth_l1(predicted, keypoints[..., :2], beta), -1)
  return jnp.sum(per_point * visible, -1) / jnp.maximum(jnp.sum(visible, -1), 1.0)


def visibility_loss(logits: jax.Array, keypoints: jax.Array) -> jax.Array:
  """Sigmoid binary cross-entropy of visibility logits [N, K] against keypoints[..., 2], mean over K -> [N]."""
  logits = logits.astype(jnp.float32)
  targets = (keypoints[..., 2] > 0).astype(jnp.float32)
  per_point = jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))
  return jnp.mean(per_point, -1)
