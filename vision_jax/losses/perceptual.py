"""Pixel and perceptual (content) losses for image-to-image models.

The content loss of SRGAN (Ledig et al., 2017) compares images in the feature space of a fixed classifier (VGG in
the paper). No pretrained VGG is downloadable on these machines, so the features here come from any network
trained in this project (e.g. the digits feature network of `vision_jax.evaluation.feature_nets`): the outputs of
its convolutions, read with Flax's `capture_intermediates`.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError

PIXEL_KINDS = ("l1", "l2")


def pixel_loss(output: jax.Array, target: jax.Array, kind: str = "l1") -> jax.Array:
  """Per-example mean absolute ("l1") or squared ("l2") pixel difference.

  Args:
    output: [N, ...] predicted images.
    target: [N, ...] target images of the same shape.
    kind: one of `PIXEL_KINDS`.

  Returns:
    [N] float32.
  """
  if kind not in PIXEL_KINDS:
    raise ConfigError(f"unknown pixel loss {kind!r}; use one of {', '.join(PIXEL_KINDS)}")
  diff = output.astype(jnp.float32) - target.astype(jnp.float32)
  values = jnp.abs(diff) if kind == "l1" else jnp.square(diff)
  return jnp.mean(values.reshape(values.shape[0], -1), axis=1)


def conv_features(module: nn.Module, variables: Any, images: jax.Array) -> list[jax.Array]:
  """The outputs of every `nn.Conv` of `module` on `images`, in call order.

  Args:
    module: a Flax module with convolutions, called as `module(images)`.
    variables: its variables ({"params": ...}).
    images: its input [N, H, W, C].

  Returns:
    [[N, h, w, c] per convolution]; empty when the module has none.
  """
  _, state = module.apply(variables, images, capture_intermediates=lambda m, name: isinstance(m, nn.Conv),
                          mutable=["intermediates"])
  found = []

  def collect(tree):
    for key in tree:  # dict order is call order
      value = tree[key]
      if key == "__call__":
        found.extend(value)
      elif isinstance(value, dict):
        collect(value)

  collect(state.get("intermediates", {}))
  return found


def content_loss(output_features: Sequence[jax.Array], target_features: Sequence[jax.Array]) -> jax.Array:
  """Per-example mean squared feature difference, averaged over layers (each layer weighs the same).

  Args:
    output_features: features of the predicted images, [[N, ...] per layer].
    target_features: features of the target images, the same shapes.

  Returns:
    [N] float32.
  """
  if len(output_features) != len(target_features) or not output_features:
    raise ConfigError("content loss needs the same non-empty list of feature layers for both images; the feature "
                      "network has no convolutions")
  per_layer = [pixel_loss(a, b, "l2") for a, b in zip(output_features, target_features)]
  return sum(per_layer) / len(per_layer)
