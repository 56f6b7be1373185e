"""Host-side resizing of whole examples: the image and every annotation that lives in its pixels move together.

Two modes bring images of any size to `size` x `size`:

  * `center_crop`: scale the shorter side to size / crop_fraction (bilinear), keep the central window
    (classification's usual evaluation view; what `image_size > 0` has always done).
  * `letterbox`: keep the aspect ratio, scale the longer side to `size` and pad the rest with `fill`, the resized
    image centred on the canvas (no content lost; detection's usual view).

Both are an axis-aligned map `out = in * scale + offset` per axis, in the continuous pixel coordinates of
`vision_jax.data.features` (pixel (r, c) covers [c, c + 1) x [r, r + 1)). Every resized example carries it as
`resize_info` float32 [4] = (scale_y, scale_x, offset_y, offset_x), so predictions map back to the stored image
by `x_in = (x_out - offset_x) / scale_x`, `y_in = (y_out - offset_y) / scale_y`.

With the image move, by the spec's typed features (`features.typed_features`):
  * further `image` features of the image's height and width (bilinear, as the image);
  * `mask` and `instance_masks` (nearest neighbour: output pixel centres sample the input pixel they fall in;
    letterbox padding is `IGNORE_INDEX` in semantic masks, 0 in instance masks);
  * `boxes` (scaled, shifted, clipped to the canvas). An object whose clipped box keeps less than `min_visible`
    of its area, or none of it, is removed: boxes, box_labels, instance_masks and `value` features of one row
    per object (leading dim M, like digit_scenes' source_index) are re-packed to the spec's static row count
    (kept objects first, in order; padding rows zero, box_labels -1) and `num_objects` updated;
  * `keypoints` [..., 3] (x, y, visibility): moved; visibility 0 where they leave the canvas.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vision_jax.data.features import IGNORE_INDEX, Feature, box_areas
from vision_jax.errors import ConfigError, DataError

MODES = ("center_crop", "letterbox")
GEOMETRY_KINDS = ("boxes", "instance_masks", "mask", "keypoints")  # features that live in an image's pixels
_OBJECT_KINDS = ("boxes", "box_labels", "instance_masks", "object_values")  # one row per object


def _to_pil(image: np.ndarray):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  squeeze = image.ndim == 3 and image.shape[-1] == 1
  return Image.fromarray(image[..., 0] if squeeze else image)


def _resize_bilinear(image: np.ndarray, width: int, height: int) -> np.ndarray:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  out = np.asarray(_to_pil(image).resize((width, height), Image.BILINEAR))
  return out[..., None] if out.ndim == 2 else out


def center_crop_geometry(height: int, width: int, size: int, crop_fraction: float = 0.875) -> np.ndarray:
  """Where `center_crop` puts an image of (height, width): the map and the resized size.

  The shorter side goes to max(size, round(size / crop_fraction)), the longer one keeps the aspect ratio (at
  least `size`), then the central size x size window is kept.

  Returns:
    float64 [6]: scale_y, scale_x, offset_y, offset_x, resized height, resized width.
  """
  short = max(size, int(round(size / crop_fraction)))
  scale = short / min(width, height)
  new_w, new_h = max(size, int(round(width * scale))), max(size, int(round(height * scale)))
  left, top = (new_w - size) // 2, (new_h - size) // 2
  return np.array([new_h / height, new_w / width, -top, -left, new_h, new_w], np.float64)


def letterbox_geometry(height: int, width: int, size: int) -> np.ndarray:
  """As `center_crop_geometry` for `letterbox`: the longer side goes to `size`, the image is centred."""
  scale = size / max(height, width)
  new_w, new_h = max(1, min(size, int(round(width * scale)))), max(1, min(size, int(round(height * scale))))
  return np.array([new_h / height, new_w / width, (size - new_h) // 2, (size - new_w) // 2, new_h, new_w],
                  np.float64)


def resize_and_center_crop(image: np.ndarray, size: int, crop_fraction: float = 0.875) -> np.ndarray:
  """Resizes the shorter side to size / crop_fraction (bilinear), then crops the central size x size.

  Args:
    image: uint8 [H, W] or [H, W, C].
    size: output side length.
    crop_fraction: fraction of the resized shorter side kept by the crop (0.875: 224 from 256).

  Returns:
    uint8 [size, size, C] (C=1 for grayscale input).
  """
  _, _, top, left, new_h, new_w = center_crop_geometry(image.shape[0], image.shape[1], size, crop_fraction)
  out = _resize_bilinear(image, int(new_w), int(new_h))
  return out[int(-top):int(-top) + size, int(-left):int(-left) + size]


def _letterbox_image(image: np.ndarray, size: int, geometry: np.ndarray, fill: float) -> np.ndarray:
  _, _, top, left, new_h, new_w = (int(v) for v in geometry)
  resized = _resize_bilinear(image, new_w, new_h)
  canvas = np.full((size, size) + resized.shape[2:], fill, resized.dtype)
  canvas[top:top + new_h, left:left + new_w] = resized
  return canvas


def _nearest(masks: np.ndarray, geometry: np.ndarray, size: int, fill: int) -> np.ndarray:
  """Masks [..., H, W] sampled at the output pixel centres mapped back into them: [..., size, size]."""
  scale_y, scale_x, offset_y, offset_x = geometry[:4]
  height, width = masks.shape[-2:]
  rows = np.floor((np.arange(size) + 0.5 - offset_y) / scale_y).astype(np.int64)
  cols = np.floor((np.arange(size) + 0.5 - offset_x) / scale_x).astype(np.int64)
  inside = ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]
  out = masks[..., np.clip(rows, 0, height - 1)[:, None], np.clip(cols, 0, width - 1)[None, :]]
  return np.where(inside, out, np.asarray(fill, masks.dtype)).astype(masks.dtype)


def _move_points(points: np.ndarray, geometry: np.ndarray) -> np.ndarray:
  """[..., 2] (x, y) input pixels -> output pixels."""
  scale = np.array([geometry[1], geometry[0]])
  offset = np.array([geometry[3], geometry[2]])
  return points * scale + offset


def move_boxes(boxes: np.ndarray, geometry: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
  """Moves xyxy boxes [M, 4] and clips them to the canvas.

  Returns:
    (boxes float32 [M, 4], visible float64 [M]): the clipped boxes and the fraction of each moved box's area
    inside the canvas (0 for zero-area boxes).
  """
  moved = _move_points(np.asarray(boxes, np.float64).reshape(-1, 2, 2), geometry).reshape(-1, 4)
  clipped = np.clip(moved, 0.0, float(size))
  area = box_areas(moved)
  visible = np.where(area > 0, box_areas(clipped) / np.where(area > 0, area, 1.0), 0.0)
  return clipped.astype(np.float32), visible


def _object_count(example: dict[str, Any], keys: dict[str, tuple[str, ...]], rows: int) -> int:
  if keys["count"] and keys["count"][0] in example:
    return min(rows, int(example[keys["count"][0]]))
  if keys["box_labels"] and keys["box_labels"][0] in example:
    return int(np.sum(np.asarray(example[keys["box_labels"][0]]) >= 0))
  return int(np.sum(box_areas(example[keys["boxes"][0]]) > 0))


def _repack(example: dict[str, Any], keys: dict[str, tuple[str, ...]], keep: np.ndarray,
            features: dict[str, Feature]) -> None:
  """Keeps rows `keep` of every object feature, padded to the feature's static row count; sets the count."""
  for kind in _OBJECT_KINDS:
    for key in (k for k in keys[kind] if k in example):
      rows = np.asarray(example[key])
      static = features[key].shape[0] if features[key].shape else len(keep)
      kept = rows[keep[:static]]
      padded = np.full((static,) + rows.shape[1:], -1 if kind == "box_labels" else 0, rows.dtype)
      padded[:len(kept)] = kept
      example[key] = padded
  for key in keys["count"]:
    example[key] = np.int32(min(len(keep), features[keys["boxes"][0]].shape[0]))


def _keys_by_kind(features: dict[str, Feature]) -> dict[str, tuple[str, ...]]:
  kinds = set(GEOMETRY_KINDS) | {"image", "box_labels", "count"}
  keys = {kind: tuple(k for k, f in features.items() if f.kind == kind) for kind in kinds}
  rows = features[keys["boxes"][0]].shape[:1] if keys["boxes"] else None
  # Values with one row per object (e.g. digit_scenes' source_index [M]) are re-packed with the objects.
  keys["object_values"] = tuple(k for k, f in features.items() if f.kind == "value" and rows and f.shape[:1] == rows)
  return keys


def fit_objects(example: dict[str, Any], features: dict[str, Feature]) -> dict[str, Any]:
  """An example whose object features have the spec's static row count (re-packed when a record is ragged).

  Args:
    example: one record, {key: array}.
    features: the split's typed features (`features.typed_features(spec)`).

  Returns:
    `example` itself when every object feature already has its static rows, else a re-packed copy.
  """
  keys = _keys_by_kind(features)
  object_keys = [k for kind in _OBJECT_KINDS for k in keys[kind] if k in example and features[k].shape]
  if all(np.shape(example[k])[:1] == features[k].shape[:1] for k in object_keys) or not keys["boxes"]:
    return example
  out = dict(example)
  rows = len(np.asarray(out[keys["boxes"][0]]).reshape(-1, 4))
  out[keys["boxes"][0]] = np.asarray(out[keys["boxes"][0]], np.float32).reshape(-1, 4)
  _repack(out, keys, np.arange(_object_count(out, keys, rows)), features)
  return out


def resize_example(example: dict[str, Any], size: int, features: dict[str, Feature], image_key: str = "image",
                   mode: str = "center_crop", min_visible: float = 0.0, fill: float = 0.0,
                   crop_fraction: float = 0.875) -> dict[str, Any]:
  """Resizes one example to `size` x `size` by `mode`, moving every annotation with the image (module docstring).

  Args:
    example: one record, {key: NumPy array}; the image uint8 [H, W] or [H, W, C].
    size: output side length.
    features: the split's typed features (`features.typed_features(spec)`): says which keys are boxes, masks,
      keypoints, further images.
    image_key: the main image's key.
    mode: "center_crop" or "letterbox".
    min_visible: objects whose clipped box keeps less than this fraction of its area are removed (boxes with no
      area left always are).
    fill: letterbox padding value of images.
    crop_fraction: center_crop's kept fraction of the resized shorter side.

  Returns:
    A new dict: images [size, size, C], moved annotations, object features re-packed, and `resize_info` float32
    [4] (scale_y, scale_x, offset_y, offset_x).
  """
  if mode not in MODES:
    raise ConfigError(f"resize mode {mode!r} is not supported; use one of {', '.join(MODES)}")
  image = np.asarray(example[image_key])
  if image.ndim not in (2, 3):
    raise DataError(f"host resizing takes images [H, W] or [H, W, C]; {image_key!r} has shape {image.shape}: "
                    "set input.image_size to 0 for inputs of another rank")
  height, width = image.shape[:2]
  if mode == "letterbox":
    geometry = letterbox_geometry(height, width, size)
    resize = lambda im: _letterbox_image(im, size, geometry, fill)
  else:
    geometry = center_crop_geometry(height, width, size, crop_fraction)
    resize = lambda im: resize_and_center_crop(im, size, crop_fraction)
  keys = _keys_by_kind(features)
  out = dict(example)
  for key in keys["image"]:
    if key != image_key and key in out and np.shape(out[key])[:2] == (height, width):
      out[key] = resize(np.asarray(out[key]))
  out[image_key] = resize(image)
  for key in keys["mask"]:
    if key in out:
      out[key] = _nearest(np.asarray(out[key]), geometry, size, IGNORE_INDEX)
  for key in keys["instance_masks"]:
    if key in out:
      out[key] = _nearest(np.asarray(out[key]), geometry, size, 0)
  for key in keys["keypoints"]:
    if key in out:
      points = np.asarray(out[key], np.float32)
      xy = _move_points(points[..., :2].astype(np.float64), geometry)
      inside = np.all((xy >= 0) & (xy < size), axis=-1)
      out[key] = np.concatenate([xy, np.where(inside, points[..., 2], 0)[..., None]], -1).astype(np.float32)
  if keys["boxes"] and keys["boxes"][0] in out:
    box_key = keys["boxes"][0]
    boxes = np.asarray(out[box_key], np.float32).reshape(-1, 4)
    count = _object_count(out, keys, len(boxes))
    moved, visible = move_boxes(boxes, geometry, size)
    out[box_key] = moved
    keep = np.flatnonzero((np.arange(len(boxes)) < count) & (visible > 0) & (visible >= min_visible))
    _repack(out, keys, keep, features)
  out["resize_info"] = geometry[:4].astype(np.float32)
  return out


def letterbox(example: dict[str, Any], size: int, features: dict[str, Feature], image_key: str = "image",
              min_visible: float = 0.0, fill: float = 0.0) -> dict[str, Any]:
  """`resize_example` in "letterbox" mode: aspect kept, longer side `size`, centred, padded with `fill`."""
  return resize_example(example, size, features, image_key, "letterbox", min_visible, fill)


def center_crop(example: dict[str, Any], size: int, features: dict[str, Feature], image_key: str = "image",
                min_visible: float = 0.0, crop_fraction: float = 0.875) -> dict[str, Any]:
  """`resize_example` in "center_crop" mode (`resize_and_center_crop` of the image, annotations moved)."""
  return resize_example(example, size, features, image_key, "center_crop", min_visible,
                        crop_fraction=crop_fraction)


def resized_features(features: dict[str, Feature], size: int, image_key: str = "image") -> dict[str, Feature]:
  """The typed features of examples after `resize_example`: pixel features at `size` x `size`, plus resize_info.

  Args:
    features: the stored typed features.
    size: the output side length.
    image_key: the main image's key (its channel count is kept; 1 for stored [H, W]).

  Returns:
    A new dict: images [size, size, C], masks [size, size], instance_masks [M, size, size], the rest unchanged,
    and `resize_info` float32 [4].
  """
  out = dict(features)
  image_hw = tuple(features[image_key].shape[:2])
  for key, feature in features.items():
    if feature.kind == "image" and tuple(feature.shape[:2]) == image_hw:
      channels = feature.shape[2] if len(feature.shape) == 3 else 1
      out[key] = dataclasses.replace(feature, shape=(size, size, channels))
    elif feature.kind == "mask":
      out[key] = dataclasses.replace(feature, shape=(size, size))
    elif feature.kind == "instance_masks":
      out[key] = dataclasses.replace(feature, shape=(feature.shape[0], size, size))
  out["resize_info"] = Feature("value", (4,), "float32")
  return out
