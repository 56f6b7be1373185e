"""Shape-preserving deformations of hand-drawn images (e.g. the two views of SimCLR's NT-Xent in metric learning):
elastic distortion and stroke thickness, registered as image ops `elastic` and `stroke`, so that config
strings chain them with the library's ops, e.g.
`input.augment = "stroke(p=0.6)|elastic(alpha=8, sigma=3, p=0.5)|affine(degrees=15, ...)|cutout(size=8, p=0.5)"`;
and the deterministic shape normalisations `deskew` and `moment_norm` (moment-based slant removal, centring and
scaling, for `input.preprocess`).

All keep the dtype of their input (integer images are rounded back) and work on [N, H, W, C] batches under jit.

References:
  Simard, Steinkraus, Platt, "Best Practices for Convolutional Neural Networks Applied to Visual Document
  Analysis", ICDAR 2003 (elastic distortion: a random displacement field smoothed by a Gaussian, scaled by alpha).
  LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document Recognition", Proc. IEEE 1998, and
  the MNIST page's "deskewing" rows (a shear that makes the ink's principal axis vertical, from its second moments).
  Casey, "Moment Normalization of Handprinted Characters", IBM J. Res. Dev. 14(5), 1970 (centroid, slant and size
  from the first and second moments).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.data.augment.registry import Op, pixel_op, register
from vision_jax.data.augment.warp import sample_image, warp_sample
from vision_jax.errors import ConfigError


def _like_input(result: jax.Array, images: jax.Array) -> jax.Array:
  if jnp.issubdtype(images.dtype, jnp.integer):
    info = jnp.iinfo(images.dtype)
    return jnp.clip(jnp.round(result), info.min, info.max).astype(images.dtype)
  return result.astype(images.dtype)


def _chosen(rng: jax.Array, n: int, p: float) -> jax.Array:
  return (jax.random.uniform(rng, (n,)) < p)[:, None, None, None]


def gaussian_kernel(sigma: float) -> np.ndarray:
  """Normalised 1-D Gaussian taps [2 * ceil(2 sigma) + 1]."""
  radius = max(1, int(np.ceil(2 * sigma)))
  taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
  return (taps / taps.sum()).astype(np.float32)


def smoothing_matrix(size: int, sigma: float) -> np.ndarray:
  """[size, size] matrix M with (M @ x)[i] = sum_j taps[j - i + radius] x[j]: the zero-padded 'same' convolution
  of a length-`size` signal with `gaussian_kernel(sigma)` (symmetric, so correlation and convolution agree)."""
  taps = gaussian_kernel(sigma)
  radius = len(taps) // 2
  offsets = np.arange(size)[None, :] - np.arange(size)[:, None] + radius  # [i, j] -> tap index
  valid = (offsets >= 0) & (offsets < len(taps))
  return np.where(valid, taps[np.clip(offsets, 0, len(taps) - 1)], 0.0).astype(np.float32)


def smooth_fields(fields: jax.Array, sigma: float) -> jax.Array:
  """Fields [..., H, W] convolved with a separable Gaussian of `sigma` pixels (`gaussian_kernel`), zero padded."""
  rows = jnp.asarray(smoothing_matrix(fields.shape[-2], sigma))
  cols = jnp.asarray(smoothing_matrix(fields.shape[-1], sigma))
  return jnp.einsum("ij,...jk,lk->...il", rows, fields, cols, precision=jax.lax.Precision.HIGHEST)


def displace(images: jax.Array, fields: jax.Array) -> jax.Array:
  """Each output pixel (r, c) sampled bilinearly at (r + fields[:, 0, r, c], c + fields[:, 1, r, c]) of its image,
  the image extended by zeros (interpolated into near the border, as scipy's map_coordinates mode grid-constant).

  Args:
    images: [N, H, W, C].
    fields: [N, 2, H, W] row and column displacements in pixels.

  Returns:
    [N, H, W, C] float32.
  """
  height, width = images.shape[1:3]
  rows, cols = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32), indexing="ij")

  def one(image, field):  # [H, W, C], [2, H, W]
    return sample_image(image, rows + field[0], cols + field[1], order=1, fill=0.0)

  return jax.vmap(one)(images.astype(jnp.float32), fields.astype(jnp.float32))


def elastic_distortion(rng: jax.Array, images: jax.Array, alpha: float = 8.0, sigma: float = 3.0) -> jax.Array:
  """Simard's elastic distortion: each image `displace`d by a field of uniform(-1, 1) noise smoothed by a Gaussian of
  `sigma` pixels and scaled by `alpha` pixels.

  Args:
    rng: draws the displacement fields.
    images: [N, H, W, C].
    alpha: displacement scale in pixels.
    sigma: smoothing of the field in pixels (larger: smoother, more global warps).

  Returns:
    [N, H, W, C] distorted images, the input's dtype.
  """
  n, height, width, _ = images.shape
  noise = jax.random.uniform(rng, (n, 2, height, width), minval=-1.0, maxval=1.0)
  return _like_input(displace(images, alpha * smooth_fields(noise, sigma)), images)


def grey_morphology(images: jax.Array, dilate: bool) -> jax.Array:
  """Grey dilation (max) or erosion (min) over the 3x3 cross (the pixel and its 4 neighbours); outside the image
  counts as the pixel itself.

  Args:
    images: [N, H, W, C].
    dilate: True for the maximum (thicker bright strokes), False for the minimum (thinner).

  Returns:
    [N, H, W, C], the input's dtype.
  """
  height, width = images.shape[1:3]
  padded = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  shifted = jnp.stack([padded[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
                       for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))])
  return jnp.max(shifted, 0) if dilate else jnp.min(shifted, 0)


def stroke_thickness(rng: jax.Array, images: jax.Array, p: float = 0.6) -> jax.Array:
  """With probability `p` per image, thicker (grey dilation) or thinner (grey erosion) bright strokes, each half of
  the time; the other images unchanged.

  Args:
    rng: draws the choices.
    images: [N, H, W, C] bright strokes on a dark background.
    p: the probability that an image changes.

  Returns:
    [N, H, W, C], the input's dtype.
  """
  k_apply, k_kind = jax.random.split(rng)
  n = images.shape[0]
  thicker = _chosen(k_kind, n, 0.5)
  changed = jnp.where(thicker, grey_morphology(images, True), grey_morphology(images, False))
  return jnp.where(_chosen(k_apply, n, p), changed, images)


def _check_probability(op: str, p: float) -> None:
  if not 0 <= p <= 1:
    raise ConfigError(f"{op}(p={p}) needs a probability p in [0, 1]")


@register("elastic")
def elastic(alpha: float = 8.0, sigma: float = 3.0, p: float = 1.0) -> Op:
  """`elastic_distortion` of each image with probability `p`."""
  _check_probability("elastic", p)
  if alpha < 0 or sigma <= 0:
    raise ConfigError(f"elastic(alpha={alpha}, sigma={sigma}) needs alpha >= 0 and sigma > 0")

  def fn(rng, images):
    k_apply, k_field = jax.random.split(rng)
    return jnp.where(_chosen(k_apply, images.shape[0], p), elastic_distortion(k_field, images, alpha, sigma), images)

  return pixel_op(fn)


@register("stroke")
def stroke(p: float = 0.6) -> Op:
  """`stroke_thickness` with probability `p` per image."""
  _check_probability("stroke", p)
  return pixel_op(lambda rng, images: stroke_thickness(rng, images, p))


def moment_maps(images: jax.Array, center: bool = True, spread: float = 0.0, max_stretch: float = 2.0) -> jax.Array:
  """Forward maps [N, 2, 3] normalising each image by the moments of its intensity distribution (channel mean as
  the weight, pixel centres as coordinates; centroid (mx, my), alpha = cov(x, y) / var(y)):

    x' = fx (x - mx - alpha (y - my)) + (W/2 if center else mx),   y' = fy (y - my) + (H/2 if center else my)

  The shear removes the slant (the output's cov(x, y) is zero, "deskewing"); with `spread` > 0 the scales
  fy = spread H / std(y) and fx = spread W / std(x | sheared) give both axes the same relative spread (moment
  normalisation, Casey 1970), fx capped at max_stretch * fy so that thin shapes (a "1") are not blown up to the
  image width, both clipped to [1/4, 4]; `spread` = 0 keeps the size (fx = fy = 1). Blank images, or ones with
  var(y) = 0, get alpha = 0 and keep their scale.

  Args:
    images: [N, H, W, C] images with ink brighter than the background (MNIST's convention).
    center: move each centroid to the image centre.
    spread: target standard deviation of the ink along each axis as a fraction of the image side (0: no scaling).
    max_stretch: the largest ratio fx / fy.

  Returns:
    [N, 2, 3] float32 input -> output pixel-coordinate maps (for `warp.warp_images`).
  """
  n, h, w = images.shape[:3]
  weights = jnp.mean(images.astype(jnp.float32), axis=-1)  # [N, H, W]
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) + 0.5, jnp.arange(w, dtype=jnp.float32) + 0.5, indexing="ij")
  total = jnp.sum(weights, axis=(1, 2))
  inked = total > 0
  safe = jnp.where(inked, total, 1.0)
  mx = jnp.where(inked, jnp.sum(weights * xs, axis=(1, 2)) / safe, w / 2.0)
  my = jnp.where(inked, jnp.sum(weights * ys, axis=(1, 2)) / safe, h / 2.0)
  dx, dy = xs - mx[:, None, None], ys - my[:, None, None]
  var_x, var_y, cov_xy = (jnp.sum(weights * a * b, axis=(1, 2)) / safe for a, b in ((dx, dx), (dy, dy), (dx, dy)))
  shaped = var_y > 1e-6
  alpha = jnp.where(shaped, cov_xy / jnp.where(shaped, var_y, 1.0), 0.0)
  if spread > 0:
    sheared_var_x = jnp.maximum(var_x - alpha * cov_xy, 1e-6)
    fy = jnp.where(shaped, jnp.clip(spread * h / jnp.sqrt(jnp.where(shaped, var_y, 1.0)), 0.25, 4.0), 1.0)
    fx = jnp.where(shaped, jnp.clip(spread * w / jnp.sqrt(sheared_var_x), 0.25, max_stretch * fy), 1.0)
  else:
    fx = fy = jnp.ones(n)
  out_x, out_y = (jnp.full(n, w / 2.0), jnp.full(n, h / 2.0)) if center else (mx, my)
  zero = jnp.zeros(n)
  return jnp.stack([jnp.stack([fx, -fx * alpha, out_x - fx * (mx - alpha * my)], -1),
                    jnp.stack([zero, fy, out_y - fy * my], -1)], -2)


@register("deskew")
def deskew(center: bool = True) -> Op:
  """Warps each image (bilinear, 0 outside) by its `moment_maps` without scaling: the slant removed and, with
  `center`, the centroid centred. Deterministic (the same in training and evaluation): put it in `input.preprocess`."""
  return lambda rng, sample: warp_sample(sample, moment_maps(sample.images, bool(center)))


MOMENT_SPREAD = 0.16  # moment_norm's default ink spread (a fraction of the image side)


@register("moment_norm")
def moment_norm(spread: float = MOMENT_SPREAD, max_stretch: float = 2.0) -> Op:
  """`deskew` plus scaling of each axis to the same relative ink spread (`moment_maps`; 0.16 of the side is 4.5
  pixels of 28, about MNIST's typical vertical spread). Deterministic: put it in `input.preprocess`."""
  if spread <= 0 or max_stretch < 1:
    raise ConfigError(f"moment_norm(spread={spread}, max_stretch={max_stretch}) needs spread > 0 and max_stretch >= 1")
  return lambda rng, sample: warp_sample(sample, moment_maps(sample.images, True, float(spread), float(max_stretch)))
