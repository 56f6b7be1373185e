"""Image ops on batches, registered by name and chained by a config string such as
"to_float|pad_crop(pad=2)|rotate(degrees=10)|normalize(mean=0.1307, std=0.3081)".

Every op is a pure JAX function `op(rng, images [N, H, W, C]) -> images` built by a registered factory from
its keyword arguments, so a pipeline is jit-able, runs on device inside the train step, and is reproducible
from the step's RNG. Random values are drawn for the whole batch at once, which makes them independent of how
the batch is sharded over devices.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from vision_jax.data.op_spec import parse_pipeline
from vision_jax.errors import ConfigError

ImageOp = Callable[[jax.Array, jax.Array], jax.Array]
_OPS: dict[str, Callable[..., ImageOp]] = {}


def register(name: str):
  """Decorator registering an op factory `factory(**kwargs) -> op(rng, images) -> images` under `name`."""

  def decorator(factory):
    if name in _OPS:
      raise ValueError(f"image op {name!r} is registered twice")
    _OPS[name] = factory
    return factory

  return decorator


def names() -> list[str]:
  """Sorted names of the registered ops."""
  return sorted(_OPS)


def build(spec: str) -> ImageOp:
  """Builds the op pipeline described by `spec` (ops separated by "|"); "" is the identity.

  Raises:
    ConfigError: an unknown op name or arguments the op does not take.
  """
  ops = []
  for name, kwargs in parse_pipeline(spec):
    if name not in _OPS:
      raise ConfigError(f"unknown image op {name!r} in {spec!r}; known ops: {', '.join(names())}")
    try:
      ops.append(_OPS[name](**kwargs))
    except TypeError as e:
      raise ConfigError(f"image op {name!r} does not take {kwargs}: {e}") from None

  def pipeline(rng: jax.Array, images: jax.Array) -> jax.Array:
    for i, op in enumerate(ops):
      images = op(jax.random.fold_in(rng, i), images)
    return images

  return pipeline


@register("to_float")
def to_float(scale: float = 1.0 / 255.0) -> ImageOp:
  """Casts to float32 and multiplies by `scale` (uint8 0..255 -> 0..1 by default)."""
  return lambda rng, images: images.astype(jnp.float32) * scale


@register("normalize")
def normalize(mean: Any = 0.0, std: Any = 1.0) -> ImageOp:
  """Per-channel (x - mean) / std; `mean` and `std` are scalars or per-channel sequences."""
  mean_arr, std_arr = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
  return lambda rng, images: (images - mean_arr) / std_arr


@register("pad")
def pad(to: int = 32) -> ImageOp:
  """Zero-pads the spatial dims symmetrically to `to` x `to` (e.g. 28x28 MNIST -> 32x32 for classic LeNet-5)."""

  def op(rng, images):
    h, w = images.shape[1:3]
    if h > to or w > to:
      raise ConfigError(f"pad(to={to}) got {h}x{w} images, larger than the target; raise `to`")
    top, left = (to - h) // 2, (to - w) // 2
    return jnp.pad(images, ((0, 0), (top, to - h - top), (left, to - w - left), (0, 0)))

  return op


@register("pad_crop")
def pad_crop(pad: int = 4) -> ImageOp:  # pylint: disable=redefined-outer-name
  """Zero-pads each side by `pad` pixels and crops a random window of the original size per image."""

  def op(rng, images):
    n, h, w, c = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(rng, (n, 2), 0, 2 * pad + 1)
    crop = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (h, w, c))
    return jax.vmap(crop)(padded, offsets)

  return op


@register("flip_lr")
def flip_lr(p: float = 0.5) -> ImageOp:
  """Mirrors each image left-right with probability `p`."""

  def op(rng, images):
    flip = jax.random.uniform(rng, (images.shape[0],)) < p
    return jnp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)

  return op


def rotate_images(images: jax.Array, angles: jax.Array, order: int = 1) -> jax.Array:
  """Rotates each image about its centre by `angles` radians (counter-clockwise), zero fill outside.

  Args:
    images: [N, H, W, C] float images.
    angles: [N] angles in radians.
    order: interpolation order for `jax.scipy.ndimage.map_coordinates` (0 nearest, 1 bilinear).

  Returns:
    [N, H, W, C] rotated images.
  """
  _, h, w, _ = images.shape
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                            indexing="ij")
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0

  def one(image, angle):
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # Inverse mapping: the output pixel (r, c) samples the input at the point rotated by -angle. Rows grow
    # downwards, so a counter-clockwise turn on screen uses these signs.
    src_r = cy + (rows - cy) * cos + (cols - cx) * sin
    src_c = cx - (rows - cy) * sin + (cols - cx) * cos
    sample = lambda channel: jax.scipy.ndimage.map_coordinates(channel, [src_r, src_c], order=order,
                                                                mode="constant", cval=0.0)
    return jax.vmap(sample, in_axes=2, out_axes=2)(image)

  return jax.vmap(one)(images, angles)


@register("rotate")
def rotate(degrees: float = 10.0) -> ImageOp:
  """Rotates each image by an angle drawn uniformly from [-degrees, degrees] (bilinear, zero fill)."""
  max_angle = math.radians(degrees)

  def op(rng, images):
    angles = jax.random.uniform(rng, (images.shape[0],), minval=-max_angle, maxval=max_angle)
    return rotate_images(images, angles)

  return op
