"""Grad-CAM and Grad-CAM++ at any named layer of any Flax classifier (no model edits: `probe`).

Grad-CAM (Selvaraju et al., 2017): channel weights w_c = mean over positions of d score / d A_c, map
relu(sum_c w_c A_c). Grad-CAM++ (Chattopadhay et al., 2018, eq. 19): w_c = sum over positions of
relu(g) * a, a = g^2 / (2 g^2 + sum_positions(A_c) g^3 + 1e-6), a = 0 where g = 0.

Maps are finished as pytorch-grad-cam finishes them, so the two agree number for number: min-max normalise
(x - min) / (max + 1e-7), bilinear upsampling to the input size (half-pixel centres, edge pixels repeated, as
`cv2.resize` does when enlarging), normalise again.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.interpret import probe


def normalize_maps(maps: jax.Array) -> jax.Array:
  """Per map (x - min) / (max(x - min) + 1e-7), [N, h, w] -> [N, h, w] in [0, 1)."""
  shifted = maps - jnp.min(maps, axis=(1, 2), keepdims=True)
  return shifted / (1e-7 + jnp.max(shifted, axis=(1, 2), keepdims=True))


def upsample(maps: jax.Array, size: Sequence[int]) -> jax.Array:
  """Bilinear resize of [N, h, w] maps to [N, H, W] (`size` = (H, W)), half-pixel centres."""
  return jax.image.resize(maps, (maps.shape[0], int(size[0]), int(size[1])), "linear", antialias=False)


def cam_weights(activation: jax.Array, gradient: jax.Array, method: str = "gradcam") -> jax.Array:
  """Channel weights [N, c] from a layer's activation and gradient [N, h, w, c]; method "gradcam" or
  "gradcam++"."""
  if method == "gradcam":
    return jnp.mean(gradient, axis=(1, 2))
  if method == "gradcam++":
    g2 = gradient * gradient
    g3 = g2 * gradient
    sums = jnp.sum(activation, axis=(1, 2), keepdims=True)
    alpha = g2 / (2 * g2 + sums * g3 + 1e-6)
    alpha = jnp.where(gradient != 0, alpha, 0.0)
    return jnp.sum(jnp.maximum(gradient, 0.0) * alpha, axis=(1, 2))
  raise ValueError(f"unknown CAM method {method!r}; use gradcam or gradcam++")


def class_activation_maps(model: nn.Module, variables: Any, images: jax.Array, layer: str,
                          targets: Optional[jax.Array] = None, method: str = "gradcam",
                          size: Optional[Sequence[int]] = None) -> tuple[jax.Array, jax.Array]:
  """Grad-CAM or Grad-CAM++ heatmaps of `targets` at `layer`, finished like pytorch-grad-cam's.

  Args:
    model: an unbound Flax classifier, called as `model.apply(variables, images)` -> logits [N, K].
    variables: its variables.
    images: [N, H, W, C] model inputs.
    layer: a module path (`probe.layer_names`), e.g. "layer4_1".
    targets: [N] classes; the predicted classes when None.
    method: "gradcam" or "gradcam++".
    size: (H, W) of the maps; the input's size when None.

  Returns:
    (maps [N, H, W] in [0, 1], logits [N, K]).
  """
  if targets is None:
    targets = jnp.argmax(model.apply(variables, images), axis=-1)
  logits, activation, gradient = probe.activation_and_gradient(model, variables, images, layer, targets)
  weights = cam_weights(activation, gradient, method)
  cam = jnp.maximum(jnp.einsum("nhwc,nc->nhw", activation, weights), 0.0)
  size = images.shape[1:3] if size is None else size
  return normalize_maps(upsample(normalize_maps(cam), size)), logits


def grad_cam(model: nn.Module, variables: Any, images: jax.Array, layer: str,
             targets: Optional[jax.Array] = None) -> jax.Array:
  """Grad-CAM heatmaps [N, H, W] in [0, 1] (see `class_activation_maps`)."""
  return class_activation_maps(model, variables, images, layer, targets, "gradcam")[0]


def grad_cam_plus_plus(model: nn.Module, variables: Any, images: jax.Array, layer: str,
                       targets: Optional[jax.Array] = None) -> jax.Array:
  """Grad-CAM++ heatmaps [N, H, W] in [0, 1] (see `class_activation_maps`)."""
  return class_activation_maps(model, variables, images, layer, targets, "gradcam++")[0]
