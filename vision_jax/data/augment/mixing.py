"""Region erasing and example mixing: cutout, mixup and cutmix.

Mixup and cutmix combine each example with a partner (a random permutation of the batch, drawn for the whole
global batch) and mix `Sample.targets` with the same weight as the pixels, so the mixed targets stay
probability rows. They do not move annotations, so a `Sample` with boxes, masks or keypoints is refused.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vision_jax.data.augment.registry import Op, Sample, pixel_op, register
from vision_jax.errors import ConfigError, DataError


def window_masks(size: tuple[int, int], y1: jax.Array, x1: jax.Array, y2: jax.Array, x2: jax.Array) -> jax.Array:
  """Masks [N, H, W] of the pixel windows rows [y1, y2) x columns [x1, x2) (integer arrays [N]) in `size` (H, W)."""
  rows = jnp.arange(size[0])[None, :, None]
  cols = jnp.arange(size[1])[None, None, :]
  inside_rows = (rows >= y1[:, None, None]) & (rows < y2[:, None, None])
  return inside_rows & (cols >= x1[:, None, None]) & (cols < x2[:, None, None])


def centred_windows(rng: jax.Array, size: tuple[int, int], heights: jax.Array, widths: jax.Array):
  """Windows of `heights` x `widths` pixels [N] centred on uniform random pixels, clipped to the image.

  Returns:
    (y1, x1, y2, x2), integer arrays [N]; the clipped window is rows [y1, y2) and columns [x1, x2).
  """
  h, w = size
  ky, kx = jax.random.split(rng)
  cy = jax.random.randint(ky, heights.shape, 0, h)
  cx = jax.random.randint(kx, widths.shape, 0, w)
  y1, x1 = cy - heights // 2, cx - widths // 2
  return jnp.clip(y1, 0, h), jnp.clip(x1, 0, w), jnp.clip(y1 + heights, 0, h), jnp.clip(x1 + widths, 0, w)


def mix(images: jax.Array, targets: jax.Array, partners: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mixup (Zhang et al., 2018, "mixup: Beyond Empirical Risk Minimization").

  Args:
    images: [N, H, W, C] float images.
    targets: [N, K] class probabilities.
    partners: [N] index of each example's partner.
    weights: [N] weight of the example itself (lambda); its partner gets 1 - lambda.

  Returns:
    (images, targets) mixed with the same weights.
  """
  lam = weights.astype(images.dtype)[:, None, None, None]
  mixed = lam * images + (1 - lam) * images[partners]
  return mixed, weights[:, None] * targets + (1 - weights[:, None]) * targets[partners]


def paste(images: jax.Array, targets: jax.Array, partners: jax.Array, masks: jax.Array) -> tuple[jax.Array, jax.Array]:
  """CutMix (Yun et al., 2019): pastes the partner's pixels inside `masks` [N, H, W] and mixes targets by area.

  Returns:
    (images, targets), with each target row weighted by the fraction of pixels that stayed its own.
  """
  h, w = images.shape[1:3]
  kept = 1.0 - jnp.sum(masks, axis=(1, 2)).astype(jnp.float32) / (h * w)
  pasted = jnp.where(masks[..., None], images[partners], images)
  return pasted, kept[:, None] * targets + (1 - kept[:, None]) * targets[partners]


def _check_mixing(name: str, sample: Sample) -> None:
  if sample.targets is None:
    raise ConfigError(f"{name} mixes labels and needs targets: use it in a classification task's input.augment "
                      "or call pipeline.apply(rng, images, targets=...)")
  carried = [field for field in ("boxes", "masks", "keypoints") if getattr(sample, field) is not None]
  if carried:
    raise DataError(f"{name} cannot carry {carried[0]} (it merges two images); drop {name} from detection, "
                    "segmentation and keypoint pipelines")


def _check_alpha(name: str, alpha: float, p: float) -> None:
  if alpha <= 0 or not 0 <= p <= 1:
    raise ConfigError(f"{name}(alpha={alpha}, p={p}) needs alpha > 0 and a probability p in [0, 1]")


def _draw(rng: jax.Array, n: int, alpha: float, p: float) -> tuple[jax.Array, jax.Array]:
  """Partners (a random permutation) and lambdas ~ Beta(alpha, alpha), 1 where the op is skipped (prob. 1 - p)."""
  k_perm, k_lam, k_apply = jax.random.split(rng, 3)
  lam = jax.random.beta(k_lam, alpha, alpha, (n,))
  lam = jnp.where(jax.random.uniform(k_apply, (n,)) < p, lam, 1.0)
  return jax.random.permutation(k_perm, n), lam


@register("mixup", mixes_labels=True)
def mixup(alpha: float = 0.2, p: float = 1.0) -> Op:
  """Blends each example with a partner, lambda ~ Beta(alpha, alpha) drawn per example (p: chance of mixing)."""
  _check_alpha("mixup", alpha, p)

  def op(rng, sample):
    _check_mixing("mixup", sample)
    partners, lam = _draw(rng, sample.images.shape[0], alpha, p)
    images, targets = mix(sample.images, sample.targets, partners, lam)
    return Sample(images, None, targets)

  return op


@register("cutmix", mixes_labels=True)
def cutmix(alpha: float = 1.0, p: float = 1.0) -> Op:
  """Pastes a partner's window of about (1 - lambda) of the area, lambda ~ Beta(alpha, alpha); targets mix by
  the exact pasted fraction (windows are clipped at the border)."""
  _check_alpha("cutmix", alpha, p)

  def op(rng, sample):
    _check_mixing("cutmix", sample)
    n, h, w = sample.images.shape[:3]
    k_draw, k_where = jax.random.split(rng)
    partners, lam = _draw(k_draw, n, alpha, p)
    side = jnp.sqrt(1.0 - lam)
    windows = centred_windows(k_where, (h, w), jnp.floor(side * h).astype(jnp.int32),
                              jnp.floor(side * w).astype(jnp.int32))
    images, targets = paste(sample.images, sample.targets, partners, window_masks((h, w), *windows))
    return Sample(images, None, targets)

  return op


@register("cutout")
def cutout(size: int = 8, p: float = 1.0, fill: float = 0.0) -> Op:
  """Fills a `size` x `size` square centred on a random pixel (clipped at the border) with `fill`, with
  probability `p` per image (DeVries & Taylor, 2017, "Improved Regularization of CNNs with Cutout")."""
  if size < 0 or not 0 <= p <= 1:
    raise ConfigError(f"cutout(size={size}, p={p}) needs size >= 0 and a probability p in [0, 1]")

  def fn(rng, images):
    n, h, w = images.shape[:3]
    k_apply, k_where = jax.random.split(rng)
    sides = jnp.where(jax.random.uniform(k_apply, (n,)) < p, size, 0)
    masks = window_masks((h, w), *centred_windows(k_where, (h, w), sides, sides))
    return jnp.where(masks[..., None], jnp.asarray(fill, images.dtype), images)

  return pixel_op(fn)
