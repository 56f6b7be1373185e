"""Faster/Mask R-CNN's input transform and its inverse (torchvision's `GeneralizedRCNNTransform`).

Each image (float, `[H, W, C]` in [0, 1]) is normalised with the mean/std, resized so that its short side is
`min_size` unless that makes the long side exceed `max_size`, and the batch is zero-padded at the bottom/right
to a common size divisible by 32. The resize is torchvision's: `interpolate(scale_factor=s,
recompute_scale_factor=True)` gives an output of floor(side * s) pixels and interpolates with the recomputed
float32 scale in/out (bilinear, half-pixel centres, source clamped at 0). The sizes depend on each image, so
`rcnn_transform` runs eagerly on the host; `resize_bilinear`, `resize_masks_nearest`, `resize_boxes` and
`postprocess_boxes` are jittable for static sizes.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import DataError
from vision_jax.ops import checks

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resized_size(height: int, width: int, min_size: int = 800, max_size: int = 1333) -> tuple[int, int]:
  """torchvision's resized (height, width): scale s = min(min_size / short, max_size / long), sides floor(side * s)."""
  scale = min(min_size / min(height, width), max_size / max(height, width))
  return int(height * scale), int(width * scale)


def _linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Source indices i0, i1 and weights w0, w1 `[out_size]` of torch's bilinear (align_corners=False), in float32."""
  scale = np.float32(in_size) / np.float32(out_size)
  # torch evaluates scale * (i + 0.5) - 0.5 as one fused multiply-add: exact in float64, then rounded once.
  src = (np.float64(scale) * (np.arange(out_size) + 0.5) - 0.5).astype(np.float32)
  src = np.maximum(src, np.float32(0))
  i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  lam = np.clip(src - i0.astype(np.float32), np.float32(0), np.float32(1)).astype(np.float32)
  i1 = i0 + (i0 < in_size - 1)
  return i0, i1, np.float32(1) - lam, lam


def _bilinear(image, size: tuple[int, int], xp):
  """Bilinear resize of `[H, W, C]` float32 `image` with array module `xp` (numpy on the host, jnp under jit)."""
  (h0, h1, wh0, wh1), (c0, c1, ww0, ww1) = (_linear_taps(image.shape[0], size[0]),
                                            _linear_taps(image.shape[1], size[1]))
  ww0, ww1 = ww0[None, :, None], ww1[None, :, None]

  def along_width(rows):
    return rows[:, c0] * ww0 + rows[:, c1] * ww1

  return along_width(image[h0]) * wh0[:, None, None] + along_width(image[h1]) * wh1[:, None, None]


def resize_bilinear(image: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Bilinear resize of `image [H, W, C]` to `size = (h, w)`, equal to torch's `interpolate(mode='bilinear',
  align_corners=False)` given that output size (no antialiasing); returns `[h, w, C]` float32."""
  image = jnp.asarray(image, jnp.float32)
  if image.ndim != 3:
    raise DataError(f'resize_bilinear needs an image [H, W, C]; got shape {image.shape}: add a channel axis.')
  return _bilinear(image, size, jnp)


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
  """`[out_size]` source indices of torch's legacy 'nearest' interpolation (`F.interpolate(mode='nearest')`):
  min(floor(i * float32(in / out)), in - 1), with an exact copy at scale 1 and i >> 1 at scale 2."""
  if out_size == in_size:
    return np.arange(out_size)
  if out_size == 2 * in_size:
    return np.arange(out_size) >> 1
  scale = np.float32(in_size) / np.float32(out_size)
  return np.minimum(np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64), in_size - 1)


def resize_masks_nearest(masks: jax.Array | np.ndarray, size: tuple[int, int]) -> jax.Array | np.ndarray:
  """Nearest resize of `masks [M, H, W]` to `[M, h, w]` as torchvision resizes instance masks (mode 'nearest');
  a NumPy input gives a NumPy output."""
  return masks[:, nearest_indices(masks.shape[1], size[0])][:, :, nearest_indices(masks.shape[2], size[1])]


def _box_scale(original_size, new_size, xp):
  """[4] float32 multipliers (rw, rh, rw, rh) with r = new / original, as torchvision's `resize_boxes`."""
  ratio = xp.asarray(new_size, xp.float32) / xp.asarray(original_size, xp.float32)
  return xp.stack([ratio[1], ratio[0], ratio[1], ratio[0]])


def resize_boxes(boxes: jax.Array, original_size: jax.Array, new_size: jax.Array) -> jax.Array:
  """Scales xyxy `boxes [..., 4]` from an image of `original_size` (h, w) to `new_size` (h, w).

  The ratios are float32 new / original, as torchvision's `resize_boxes`; the sizes may be traced arrays `[2]`.
  """
  checks.check_boxes(boxes)
  return boxes * _box_scale(original_size, new_size, jnp)


def postprocess_boxes(boxes: jax.Array, image_size: jax.Array, original_size: jax.Array) -> jax.Array:
  """torchvision's `GeneralizedRCNNTransform.postprocess` for boxes: detections `[..., 4]` in the resized
  image of `image_size` (h, w) back to the `original_size` (h, w) image."""
  return resize_boxes(boxes, image_size, original_size)


def padded_batch_size(sizes: Sequence[tuple[int, int]], size_divisible: int = 32) -> tuple[int, int]:
  """(H, W) of the padded batch: the largest height and width, each rounded up to a multiple of `size_divisible`."""
  h = max(s[0] for s in sizes)
  w = max(s[1] for s in sizes)
  return (-(-h // size_divisible) * size_divisible, -(-w // size_divisible) * size_divisible)


def rcnn_transform(images: Sequence[np.ndarray], boxes: Sequence[np.ndarray] | None = None,
                   min_size: int = 800, max_size: int = 1333, image_mean: Sequence[float] = IMAGENET_MEAN,
                   image_std: Sequence[float] = IMAGENET_STD, size_divisible: int = 32,
                   masks: Sequence[np.ndarray] | None = None) -> dict[str, object]:
  """torchvision's `GeneralizedRCNNTransform` (eval mode): normalise, resize, pad into one batch.

  Args:
    images: per image a float array `[H_i, W_i, C]` with values in [0, 1].
    boxes: optional per image xyxy `[M_i, 4]` boxes in that image's pixels.
    min_size: target short side.
    max_size: cap on the long side.
    image_mean: per-channel mean subtracted first.
    image_std: per-channel std divided by.
    size_divisible: the padded batch's height and width are multiples of this.
    masks: optional per image instance masks `[M_i, H_i, W_i]` (resized nearest).

  Returns:
    A dict with `images [B, H, W, C]` float32 (zero padding), `image_sizes [B, 2]` int32 resized (h, w) before
    padding, `original_sizes [B, 2]` int32, and when given, `boxes` (list of `[M_i, 4]` float32 in the resized
    image) and `masks` (list of `[M_i, h_i, w_i]`).
  """
  if not images:
    raise DataError('rcnn_transform got no images: pass a list of [H, W, C] float arrays.')
  mean = np.asarray(image_mean, np.float32)
  std = np.asarray(image_std, np.float32)
  resized, sizes, originals = [], [], []
  for image in images:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != mean.shape[0] or not np.issubdtype(image.dtype, np.floating):
      raise DataError(f'rcnn_transform needs float images [H, W, {mean.shape[0]}] in [0, 1]; got {image.dtype} '
                      f'{image.shape}: convert with image.astype(np.float32) / 255.')
    size = resized_size(image.shape[0], image.shape[1], min_size, max_size)
    normalised = (image.astype(np.float32) - mean) / std
    resized.append(_bilinear(normalised, size, np))
    sizes.append(size)
    originals.append(image.shape[:2])
  hp, wp = padded_batch_size(sizes, size_divisible)
  batch = np.zeros((len(images), hp, wp, mean.shape[0]), np.float32)
  for i, image in enumerate(resized):
    batch[i, :image.shape[0], :image.shape[1]] = image
  out = {'images': batch, 'image_sizes': np.asarray(sizes, np.int32), 'original_sizes': np.asarray(originals, np.int32)}
  if boxes is not None:
    out['boxes'] = [np.asarray(b, np.float32) * _box_scale(o, s, np) for b, o, s in zip(boxes, originals, sizes)]
  if masks is not None:
    out['masks'] = [resize_masks_nearest(np.asarray(m), s) for m, s in zip(masks, sizes)]
  return out
