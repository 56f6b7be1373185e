"""Pixel attribution for any classifier: which input pixels a class score depends on.

Every method takes `apply_fn`, a function images [N, H, W, C] -> logits [N, K] (e.g.
`lambda x: model.apply(variables, x)`, with any input normalisation folded in, so that maps are in pixel space),
the images and the target classes [N]. Methods return raw per-channel maps [N, H, W, C]; `pixel_map` reduces
them to one value per pixel [N, H, W] the way each method's paper draws it.

  * `input_gradients` / `saliency`: d score / d pixel; saliency is max |gradient| over channels (Simonyan et al.,
    "Deep Inside Convolutional Networks", 2013).
  * `smoothgrad`: the mean (of squared, by default) gradients at noisy copies of the image (Smilkov et al.,
    "SmoothGrad", 2017), noise standard deviation `stdev_spread * (max - min)` of each image.
  * `guided_backprop`: the input gradient of a model whose ReLUs are `layers.activations.guided_relu`
    (`guided_model` switches any zoo model whose activation is ReLU).
  * `integrated_gradients`: (x - baseline) times the path integral of gradients from baseline to x, trapezoid
    rule (Sundararajan et al., "Axiomatic Attribution for Deep Networks", 2017).
  * `occlusion`: the score drop when a window of pixels is set to a baseline, averaged over the windows covering
    each pixel (Zeiler & Fergus, 2014).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import ConfigError
from vision_jax.interpret.probe import class_scores
from vision_jax.layers import activations

Apply = Callable[[jax.Array], jax.Array]  # images [N, H, W, C] -> logits [N, K]


def input_gradients(apply_fn: Apply, images: jax.Array, targets: jax.Array) -> jax.Array:
  """Gradient of each example's target logit with respect to its pixels.

  Args:
    apply_fn: images -> logits [N, K].
    images: [N, H, W, C].
    targets: [N] class indices.

  Returns:
    [N, H, W, C].
  """
  return jax.grad(lambda x: class_scores(apply_fn(x), targets))(images)


def saliency(apply_fn: Apply, images: jax.Array, targets: jax.Array) -> jax.Array:
  """Vanilla gradient saliency: max over channels of |d target logit / d pixel|, [N, H, W]."""
  return jnp.max(jnp.abs(input_gradients(apply_fn, images, targets)), axis=-1)


def smoothgrad_noise(rng: jax.Array, images: jax.Array, num_samples: int = 25,
                     stdev_spread: float = 0.15) -> jax.Array:
  """Gaussian noise for `smoothgrad`: [S, N, H, W, C] with standard deviation stdev_spread * (max - min) of each
  image."""
  spread = jnp.max(images, axis=(1, 2, 3)) - jnp.min(images, axis=(1, 2, 3))
  noise = jax.random.normal(rng, (num_samples,) + images.shape, images.dtype)
  return noise * (stdev_spread * spread)[None, :, None, None, None]


def smoothgrad(apply_fn: Apply, images: jax.Array, targets: jax.Array, rng: Optional[jax.Array] = None,
               num_samples: int = 25, stdev_spread: float = 0.15, magnitude: bool = True,
               noise: Optional[jax.Array] = None) -> jax.Array:
  """SmoothGrad: the mean over noisy copies x + noise_s of the input gradient (squared when `magnitude`).

  Args:
    apply_fn, images, targets: as in `input_gradients`.
    rng: draws the noise (`smoothgrad_noise`) when `noise` is None.
    num_samples, stdev_spread: the noise's count and scale (as in PAIR's `saliency` package).
    magnitude: average squared gradients (PAIR's default) instead of gradients.
    noise: [S, N, H, W, C] noise to use instead of drawing it.

  Returns:
    [N, H, W, C].
  """
  if noise is None:
    if rng is None:
      raise ConfigError("smoothgrad needs rng or noise; pass rng=jax.random.PRNGKey(0)")
    noise = smoothgrad_noise(rng, images, num_samples, stdev_spread)

  def one(total, sample_noise):
    grads = input_gradients(apply_fn, images + sample_noise, targets)
    return total + (grads * grads if magnitude else grads), None

  total, _ = jax.lax.scan(one, jnp.zeros_like(images), noise)
  return total / noise.shape[0]


def guided_model(model: nn.Module) -> nn.Module:
  """`model` with every activation switched to `guided_relu` (same variables, same forward values).

  Raises:
    ConfigError: the model has no `act` field, or its activation is not ReLU (guided backpropagation is defined
      for ReLU networks).
  """
  fields = {f.name for f in dataclasses.fields(model)}
  if "act" not in fields:
    raise ConfigError(f"{type(model).__name__} has no `act` field to switch to guided ReLUs; use a zoo classifier")
  if model.act not in (jax.nn.relu, nn.relu, activations.guided_relu):
    raise ConfigError(f"guided backpropagation needs a ReLU network; {type(model).__name__} uses {model.act}")
  return model.clone(act=activations.guided_relu)


def guided_backprop(guided_apply_fn: Apply, images: jax.Array, targets: jax.Array) -> jax.Array:
  """Guided backpropagation: the input gradient through guided ReLUs, [N, H, W, C].

  Args:
    guided_apply_fn: images -> logits of a model built with `guided_relu` activations (`guided_model`).
    images, targets: as in `input_gradients`.
  """
  return input_gradients(guided_apply_fn, images, targets)


def integrated_gradients(apply_fn: Apply, images: jax.Array, targets: jax.Array,
                         baseline: Optional[jax.Array] = None, steps: int = 16) -> jax.Array:
  """Integrated gradients with the trapezoid rule on `steps` points alpha = 0, 1/(steps-1), ..., 1.

  Args:
    apply_fn, images, targets: as in `input_gradients`.
    baseline: broadcastable to images; zeros (black) by default.
    steps: points on the path (>= 2).

  Returns:
    [N, H, W, C]; its sum over pixels approximates score(x) - score(baseline) (completeness).
  """
  if steps < 2:
    raise ConfigError(f"integrated gradients needs steps >= 2, got {steps}")
  baseline = jnp.zeros_like(images) if baseline is None else jnp.broadcast_to(baseline, images.shape)
  alphas = jnp.linspace(0.0, 1.0, steps)
  weights = jnp.full((steps,), 1.0 / (steps - 1)).at[0].mul(0.5).at[-1].mul(0.5)

  def one(total, alpha_weight):
    alpha, weight = alpha_weight
    grads = input_gradients(apply_fn, baseline + alpha * (images - baseline), targets)
    return total + weight * grads, None

  total, _ = jax.lax.scan(one, jnp.zeros_like(images), (alphas, weights))
  return (images - baseline) * total


def occlusion_windows(height: int, width: int, window: int, stride: int) -> np.ndarray:
  """Top-left corners [P, 2] (row, column) of the `window` x `window` squares that fit, every `stride` pixels."""
  rows = np.arange(0, height - window + 1, stride)
  cols = np.arange(0, width - window + 1, stride)
  return np.stack(np.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)


def occlusion(apply_fn: Apply, images: jax.Array, targets: jax.Array, window: int = 8, stride: int = 4,
              baseline: float = 0.0, chunk: int = 32) -> jax.Array:
  """Occlusion sensitivity: score(x) - score(x with one window at `baseline`), averaged per pixel over the windows
  covering it (pixels no window covers get 0).

  Args:
    apply_fn, images, targets: as in `input_gradients`.
    window: side of the square window (all channels occluded together).
    stride: step between windows.
    baseline: the value occluded pixels take.
    chunk: windows evaluated per model call.

  Returns:
    [N, H, W] score drops (positive: the window supported the class).
  """
  n, height, width, _ = images.shape
  corners = occlusion_windows(height, width, window, stride)
  rows, cols = jnp.arange(height), jnp.arange(width)

  def masks(corner):  # [P, H, W] 1 inside each window
    inside_r = (rows[None] >= corner[:, :1]) & (rows[None] < corner[:, :1] + window)
    inside_c = (cols[None] >= corner[:, 1:]) & (cols[None] < corner[:, 1:] + window)
    return (inside_r[:, :, None] & inside_c[:, None, :]).astype(images.dtype)

  def scores(x):
    return jnp.take_along_axis(apply_fn(x), targets[:, None].astype(jnp.int32), axis=1)[:, 0]

  original = scores(images)

  @jax.jit
  def drops(corner):  # [P] windows -> [P, N] score drops
    m = masks(corner)[:, None, :, :, None]
    occluded = images[None] * (1 - m) + baseline * m
    flat = occluded.reshape((-1,) + images.shape[1:])
    tiled = jnp.tile(targets, corner.shape[0])
    out = jnp.take_along_axis(apply_fn(flat), tiled[:, None].astype(jnp.int32), axis=1)[:, 0]
    return original[None] - out.reshape(corner.shape[0], n)

  total = jnp.zeros((n, height, width), images.dtype)
  count = jnp.zeros((height, width), images.dtype)
  for start in range(0, len(corners), chunk):
    part = jnp.asarray(corners[start:start + chunk])
    if len(part) < chunk:  # one compiled shape: pad with a repeat of the last window, then drop it
      part = jnp.concatenate([part, jnp.repeat(part[-1:], chunk - len(part), 0)])
    m = masks(part)[: len(corners[start:start + chunk])]
    d = drops(part)[: len(m)]
    total = total + jnp.einsum("pn,phw->nhw", d, m)
    count = count + m.sum(0)
  return jnp.where(count > 0, total / jnp.maximum(count, 1), 0.0)


REDUCTIONS = {"saliency": "max_abs", "smoothgrad": "max_abs", "guided_backprop": "max_abs",
              "integrated_gradients": "sum_abs", "occlusion": "none"}


def pixel_map(attribution: jax.Array, reduction: str) -> jax.Array:
  """One value per pixel [N, H, W] from [N, H, W, C]: "max_abs" (max |.| over channels), "sum_abs", or "none"
  (already [N, H, W])."""
  if reduction == "none":
    return attribution
  if reduction == "max_abs":
    return jnp.max(jnp.abs(attribution), axis=-1)
  if reduction == "sum_abs":
    return jnp.sum(jnp.abs(attribution), axis=-1)
  raise ConfigError(f"unknown reduction {reduction!r}; use max_abs, sum_abs or none")
