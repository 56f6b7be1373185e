"""Object annotations shared by the detection formats: checking boxes, padding per-object features, typing them."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from vision_jax.data.features import OBJECT_KEYS, DropCounter, Feature, object_features, pad_objects
from vision_jax.errors import DataError

BOX_TOLERANCE = 1.0  # pixels a box may stick out of its image and still be clipped rather than rejected


def checked_boxes(boxes: np.ndarray, width: int | np.ndarray, height: int | np.ndarray,
                  where: str | Callable[[int], str]) -> np.ndarray:
  """Validates xyxy pixel boxes against their images and clips those that stick out by less than a pixel.

  Args:
    boxes: [m, 4] x1, y1, x2, y2 in pixels.
    width: image width W, one for all boxes or [m], one per box.
    height: image height H, likewise.
    where: the file the boxes come from, or a function naming the source of box i, for error messages.

  Returns:
    float32 [m, 4] boxes inside [0, W] x [0, H].

  Raises:
    DataError: (for the first bad box) a box that is not finite, has a negative width or height, or sticks out
      of its image by a pixel or more.
  """
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  widths = np.broadcast_to(np.asarray(width, np.float64), (len(boxes),))
  heights = np.broadcast_to(np.asarray(height, np.float64), (len(boxes),))
  limits = np.stack([widths, heights, widths, heights], axis=1)
  finite = np.isfinite(boxes).all(axis=1)
  negative = finite & ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
  outside = finite & ((boxes <= -BOX_TOLERANCE) | (boxes >= limits + BOX_TOLERANCE)).any(axis=1)
  bad = ~finite | negative | outside
  if bad.any():
    i = int(np.argmax(bad))
    problem = ("is not finite" if not finite[i] else "has a negative width or height" if negative[i] else
               f"lies outside the {widths[i]:g}x{heights[i]:g} image")
    named = where(i) if callable(where) else f"{where}: box {i}"
    raise DataError(f"{named} (x1, y1, x2, y2 = {', '.join(f'{v:g}' for v in boxes[i])}) {problem}; fix the "
                    "annotation" + (" or the image size" if outside[i] and not negative[i] else ""))
  return np.clip(boxes, 0, limits).astype(np.float32)


def pad_example(example: dict[str, Any], max_objects: int, counter: DropCounter,
                extra_object_keys: tuple[str, ...] = ()) -> dict[str, Any]:
  """`features.pad_objects` that also pads further per-object features (e.g. VOC's `difficult`) with 0.

  Args:
    example: boxes [m, 4], box_labels [m], optionally instance_masks [m, H, W] and the `extra_object_keys`
      ([m, ...] each); other keys pass through.
    max_objects: M, the rows kept.
    counter: counts the objects dropped when m > M.
    extra_object_keys: further keys with one row per object.

  Returns:
    The example with every object feature padded to M rows (the largest M objects kept, as `pad_objects`
    keeps them) and num_objects set.
  """
  count = len(example["boxes"])
  # pad_objects picks the rows to keep; padding the row numbers as labels tells which rows it kept.
  rows = pad_objects({"boxes": example["boxes"], "box_labels": np.arange(count)}, max_objects, counter)
  keep = rows["box_labels"][:int(rows["num_objects"])]
  per_object = set(OBJECT_KEYS) | set(extra_object_keys)
  kept = {k: (np.asarray(v)[keep] if k in per_object else v) for k, v in example.items()}
  padded = pad_objects(kept, max_objects)
  for key in extra_object_keys:
    values = np.asarray(kept[key])
    padded[key] = np.zeros((max_objects,) + values.shape[1:], values.dtype)
    padded[key][:len(values)] = values
  return padded


def detection_features(image_shape: tuple[int, int, int], max_objects: int, class_names: tuple[str, ...],
                       masks: bool) -> dict[str, Feature]:
  """Typed features of a detection example: image, boxes, box_labels, num_objects (and instance_masks)."""
  features = {"image": Feature("image", tuple(image_shape), "uint8")}
  features.update(object_features(max_objects, len(class_names), class_names,
                                  tuple(image_shape[:2]) if masks else None))
  return features
