"""Typed features: what each example of a dataset holds, by kind, dtype and static per-example shape.

Every source (generated data, TFDS, image folders, COCO/VOC/YOLO files) yields examples as dicts of NumPy
arrays under these conventional keys, so tasks, augmentation and pictures need not know where data came from:

  key               kind              dtype    shape            meaning
  image             image             uint8    [H, W, C]        the main input (float32 for generated signals)
  label             label             int32    []               class of the whole example (optional)
  boxes             boxes             float32  [M, 4]           x1, y1, x2, y2 in pixels, padded to M rows
  box_labels        box_labels        int32    [M]              class of each box, -1 in padding rows
  num_objects       count             int32    []               valid rows of boxes/box_labels/instance_masks
  instance_masks    instance_masks    uint8    [M, H, W]        0/1 mask of each object, zeros in padding
  semantic_mask     mask              uint8    [H, W]           class per pixel (`IGNORE_INDEX` = unlabelled)
  keypoints         keypoints         float32  [K, 3]           x, y in pixels and visibility (0 or 1)
  image2            image             uint8    [H, W, C]        a second image (pairs, image-to-image)
  identity          identity          int32    []               who/what the example shows (metric learning)

Pixel (row r, column c) covers [c, c + 1) x [r, r + 1), as in `vision_jax.ops.boxes`. Ragged features
(objects per image) are padded to a configured maximum by `pad_objects`, which keeps the largest objects when
an example has too many and counts what it dropped.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

KINDS = ("image", "label", "boxes", "box_labels", "count", "instance_masks", "mask", "keypoints", "identity",
         "value")
IGNORE_INDEX = 255  # semantic-mask value of unlabelled pixels (VOC's boundary value)
OBJECT_KEYS = ("boxes", "box_labels", "instance_masks")  # features with one row per object


@dataclasses.dataclass(frozen=True)
class Feature:
  """One feature of a dataset's examples.

  Attributes:
    kind: one of `KINDS`.
    shape: per-example shape (static: ragged features are padded).
    dtype: NumPy dtype name.
    num_classes: classes of a label, box_labels or mask feature (0 otherwise).
    class_names: names of those classes, index-aligned (may be empty).
    keypoint_names: names of the K keypoints of a keypoints feature.
    flip_pairs: (left, right) keypoint indices swapped by a horizontal flip.
  """

  kind: str
  shape: tuple[int, ...]
  dtype: str
  num_classes: int = 0
  class_names: tuple[str, ...] = ()
  keypoint_names: tuple[str, ...] = ()
  flip_pairs: tuple[tuple[int, int], ...] = ()

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"unknown feature kind {self.kind!r}; kinds: {', '.join(KINDS)}")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What a pipeline, a task and a model need to know about a dataset split.

  Attributes:
    name: dataset name.
    split: split name.
    num_examples: examples in the split.
    image_shape: (H, W, C) of stored images, or the stored shape of the main input of another rank
      ((T, C) signals, (D, H, W, C) volumes). A dim is 0 where images vary in size (resized on the host).
    num_classes: number of label classes (0 for unlabelled data, e.g. a GAN's).
    class_names: label names, index-aligned.
    image_key: feature key of the image (the main input).
    label_key: feature key of the label ("" when examples have none).
    extra_features: further features that batches carry, by key with their per-example shape (e.g. boxes, a
      second input or regression targets); empty for plain classification datasets.
    features: every feature by key, typed (`Feature`); `typed_features` fills it in for older sources.
  """

  name: str
  split: str
  num_examples: int
  image_shape: tuple[int, ...]
  num_classes: int
  class_names: tuple[str, ...]
  image_key: str = "image"
  label_key: str = "label"
  extra_features: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
  features: dict[str, Feature] = dataclasses.field(default_factory=dict)

  @property
  def has_labels(self) -> bool:
    """Whether examples carry a class label."""
    return bool(self.label_key)

  def keys_of_kind(self, kind: str) -> tuple[str, ...]:
    """Keys of the features of one kind, in declaration order."""
    return tuple(k for k, f in typed_features(self).items() if f.kind == kind)


_KIND_BY_KEY = {"boxes": "boxes", "box_labels": "box_labels", "num_objects": "count",
                "instance_masks": "instance_masks", "semantic_mask": "mask", "keypoints": "keypoints",
                "image2": "image", "identity": "identity"}


def typed_features(spec: DatasetSpec) -> dict[str, Feature]:
  """`spec.features`, or features inferred from the older fields (image, label, extra features by key)."""
  if spec.features:
    return dict(spec.features)
  features = {spec.image_key: Feature("image", tuple(spec.image_shape), "uint8")}
  if spec.label_key:
    features[spec.label_key] = Feature("label", (), "int32", spec.num_classes, tuple(spec.class_names))
  for key, shape in spec.extra_features.items():
    features[key] = Feature(_KIND_BY_KEY.get(key, "value"), tuple(shape), "float32")
  return features


def make_spec(name: str, split: str, num_examples: int, features: dict[str, Feature],
              image_key: str = "image", label_key: str = "label") -> DatasetSpec:
  """A `DatasetSpec` from typed features; the label is optional (label_key "" or absent from features).

  Args:
    name: dataset name.
    split: split name.
    num_examples: examples in the split.
    features: key -> `Feature`, including the image.
    image_key: the main input's key.
    label_key: the class label's key; ignored when it is not among `features`.

  Returns:
    The spec, with `extra_features` listing every feature other than the image and the label.
  """
  if label_key not in features:
    label_key = ""
  label = features.get(label_key)
  extra = {k: tuple(f.shape) for k, f in features.items() if k not in (image_key, label_key)}
  return DatasetSpec(name=name, split=split, num_examples=num_examples, image_shape=tuple(features[image_key].shape),
                     num_classes=label.num_classes if label else 0,
                     class_names=tuple(label.class_names) if label else (), image_key=image_key,
                     label_key=label_key, extra_features=extra, features=dict(features))


def box_areas(boxes: np.ndarray) -> np.ndarray:
  """[M] areas of [M, 4] xyxy boxes (0 for inverted boxes)."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


class DropCounter:
  """Counts objects dropped by `pad_objects` over a run and reports the total once (thread-safe)."""

  def __init__(self):
    self._lock = threading.Lock()
    self.examples = 0
    self.objects = 0
    self.reported = False

  def add(self, dropped: int) -> None:
    """Records one example that lost `dropped` objects (no-op for 0)."""
    if dropped:
      with self._lock:
        self.examples += 1
        self.objects += dropped

  def report(self, where: str, max_objects: int) -> str | None:
    """One line about the objects dropped so far, the first time there are any; None otherwise."""
    with self._lock:
      if self.reported or not self.objects:
        return None
      self.reported = True
      return (f"note: {where}: {self.examples} examples had more than {max_objects} objects; kept the largest "
              f"{max_objects} and dropped {self.objects} (raise input.max_objects to keep them)")


def pad_objects(example: dict[str, Any], max_objects: int,
                counter: DropCounter | None = None) -> dict[str, Any]:
  """Pads an example's ragged object features to `max_objects` rows and sets `num_objects`.

  Args:
    example: a dict with "boxes" [m, 4] (and optionally "box_labels" [m], "instance_masks" [m, H, W]) for its
      m objects; other keys pass through.
    max_objects: M, the static number of rows.
    counter: records how many objects were dropped when m > M (the largest M boxes are kept, in their
      original order).

  Returns:
    A new dict: boxes float32 [M, 4], box_labels int32 [M] (-1 padding), instance_masks uint8 [M, H, W] (when
    given), num_objects int32 scalar.
  """
  out = dict(example)
  boxes = np.asarray(example.get("boxes", np.zeros((0, 4))), np.float32).reshape(-1, 4)
  count = len(boxes)
  keep = np.arange(count)
  if count > max_objects:
    keep = np.sort(np.argsort(-box_areas(boxes), kind="stable")[:max_objects])
    if counter is not None:
      counter.add(count - max_objects)
  kept = len(keep)
  padded = np.zeros((max_objects, 4), np.float32)
  padded[:kept] = boxes[keep]
  out["boxes"] = padded
  labels = np.full((max_objects,), -1, np.int32)
  if "box_labels" in example:
    labels[:kept] = np.asarray(example["box_labels"], np.int32).reshape(-1)[keep]
  out["box_labels"] = labels
  if "instance_masks" in example:
    masks = np.asarray(example["instance_masks"], np.uint8)
    padded_masks = np.zeros((max_objects,) + masks.shape[1:], np.uint8)
    padded_masks[:kept] = masks[keep]
    out["instance_masks"] = padded_masks
  out["num_objects"] = np.int32(kept)
  return out


def object_features(max_objects: int, num_classes: int, class_names: tuple[str, ...] = (),
                    mask_shape: tuple[int, int] | None = None) -> dict[str, Feature]:
  """The typed features `pad_objects` produces: boxes, box_labels, num_objects (and instance_masks)."""
  features = {"boxes": Feature("boxes", (max_objects, 4), "float32"),
              "box_labels": Feature("box_labels", (max_objects,), "int32", num_classes, tuple(class_names)),
              "num_objects": Feature("count", (), "int32")}
  if mask_shape is not None:
    features["instance_masks"] = Feature("instance_masks", (max_objects,) + tuple(mask_shape), "uint8")
  return features
