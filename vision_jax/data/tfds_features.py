"""TFDS datasets beyond classification: their features mapped to our typed keys (`features.py`).

`mapping(builder, max_objects)` says how each record of a prepared TFDS dataset becomes an example of our
conventional keys; `MappedSource` applies it lazily to `builder.as_data_source(split)`. Datasets by name:

  TFDS name          our features
  voc/2007, /2012    image; boxes, box_labels (20 classes), num_objects. Every object is kept, `difficult` ones too.
  coco/2014, /2017   image; boxes, box_labels (80 classes), num_objects. Crowd objects (`is_crowd`) are removed:
                     their boxes cover groups that detectors are not trained on (COCO's own evaluation ignores them).
  oxford_iiit_pet    image; label (37 breeds); species (label, cat/dog); semantic_mask from the trimap:
                     1 pet -> 1, 2 background -> 0, 3 border -> `IGNORE_INDEX` (255), as in most pet segmentation
                     setups (the border is ambiguous, so it is not scored).
  celeb_a            image; keypoints [5, 3] (left eye, right eye, nose, left mouth, right mouth; flip pairs
                     eyes and mouth corners); attributes float32 [40] of 0/1 (names in the feature's class_names);
                     identity (CelebA's identity number as stored, 1..10177).
  lfw                image; identity: the person's name as an int, the index of the name among the sorted names
                     of every split (the same ints in any slice of the data).
  omniglot           image; label (1623 characters); alphabet (label, 50 alphabets).
  cycle_gan/*        image only (no label; splits trainA, trainB, testA, testB are the two domains).

Other datasets: a supervised (image, class label) dataset is read as it is (no mapping); one with an
`objects` sequence holding a `bbox` maps like VOC; one with only an `image` is read unlabelled.

Boxes: TFDS stores [ymin, xmin, ymax, xmax] as fractions of the image size; we give x1, y1, x2, y2 in the
pixels of the stored image (x * width, y * height), padded to `max_objects` rows by `features.pad_objects`
(which keeps the largest objects and counts the dropped ones in `MappedSource.drop_counter`). Keypoints: a
landmark stored at integer pixel (column c, row r) is the centre of that pixel, (c + 0.5, r + 0.5), in the
convention of `features.py` (pixel c covers [c, c + 1)), so a horizontal flip x -> W - x maps it to the centre
of the mirrored pixel.

Image sizes: where a dataset's images vary in size (VOC, COCO, pets, cycle_gan) the spec's image shape has
0 for height and width, and so do masks of that size; the host resizes them later (`input.image_size`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow_datasets as tfds

from vision_jax.data import features as F
from vision_jax.errors import DataError

Record = dict[str, Any]
Example = dict[str, np.ndarray]

CELEB_A_KEYPOINTS = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
CELEB_A_KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
CELEB_A_FLIP_PAIRS = ((0, 1), (3, 4))
PET_MASK_CLASSES = ("background", "pet")
# Trimap value -> class: 1 pet, 2 background, 3 border (ignored); any other value is ignored too.
PET_TRIMAP_TO_CLASS = np.full(256, F.IGNORE_INDEX, np.uint8)
PET_TRIMAP_TO_CLASS[1], PET_TRIMAP_TO_CLASS[2] = 1, 0


@dataclasses.dataclass(frozen=True)
class Mapping:
  """How the records of one TFDS dataset become examples of our typed features.

  Attributes:
    features: our features by key (`features.Feature`), the image included.
    convert: TFDS record (nested dict, as `as_data_source` decodes it) -> example {key: array}.
    counter: counts objects `pad_objects` dropped (detection datasets), else None.
  """

  features: dict[str, F.Feature]
  convert: Callable[[Record], Example]
  counter: F.DropCounter | None = None


class MappedSource:
  """A random-access source that converts each record of a TFDS data source lazily with a `Mapping`.

  Args:
    source: the TFDS data source (`builder.as_data_source(split)`).
    mapping: the conversion.
  """

  def __init__(self, source: Sequence[Record], mapping: Mapping):
    self.source = source
    self.convert = mapping.convert
    self.drop_counter = mapping.counter

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> Example:
    return self.convert(self.source[int(index)])

  def __getitems__(self, indices: Sequence[int]) -> list[Example]:
    getitems = getattr(self.source, "__getitems__", None)
    records = getitems([int(i) for i in indices]) if getitems else [self.source[int(i)] for i in indices]
    return [self.convert(r) for r in records]


def pixel_boxes(normalized_yxyx: Any, height: int, width: int) -> np.ndarray:
  """TFDS boxes (fractions [ymin, xmin, ymax, xmax]) -> float32 [n, 4] x1, y1, x2, y2 in pixels."""
  boxes = np.asarray(normalized_yxyx, np.float32).reshape(-1, 4)
  scale = np.asarray([width, height, width, height], np.float32)
  return boxes[:, [1, 0, 3, 2]] * scale


def _image_feature(builder: tfds.core.DatasetBuilder, key: str = "image") -> F.Feature:
  shape = tuple(0 if d is None else int(d) for d in builder.info.features[key].shape)
  return F.Feature("image", shape, "uint8")


def _class_feature(feature: Any, kind: str = "label") -> F.Feature:
  return F.Feature(kind, (), "int32", int(feature.num_classes), tuple(feature.names))


def _image_of(record: Record) -> np.ndarray:
  return np.asarray(record["image"], np.uint8)


def _detection(builder: tfds.core.DatasetBuilder, max_objects: int, objects_key: str = "objects") -> Mapping:
  """Image with `objects/bbox` (and `objects/label`, `objects/is_crowd` when present) -> padded boxes."""
  objects = builder.info.features[objects_key].feature
  label = objects["label"] if "label" in objects else None
  has_crowd = "is_crowd" in objects
  counter = F.DropCounter()

  def convert(record: Record) -> Example:
    image = _image_of(record)
    found = record[objects_key]
    boxes = pixel_boxes(found["bbox"], image.shape[0], image.shape[1])
    labels = np.asarray(found["label"], np.int32).reshape(-1) if label else np.zeros(len(boxes), np.int32)
    if has_crowd:
      keep = ~np.asarray(found["is_crowd"], bool).reshape(-1)
      boxes, labels = boxes[keep], labels[keep]
    return F.pad_objects({"image": image, "boxes": boxes, "box_labels": labels}, max_objects, counter)

  num_classes, names = (int(label.num_classes), tuple(label.names)) if label else (1, ("object",))
  features = {"image": _image_feature(builder), **F.object_features(max_objects, num_classes, names)}
  return Mapping(features, convert, counter)


def _oxford_iiit_pet(builder: tfds.core.DatasetBuilder) -> Mapping:
  info = builder.info.features

  def convert(record: Record) -> Example:
    trimap = np.asarray(record["segmentation_mask"], np.uint8)
    return {"image": _image_of(record), "label": np.int32(record["label"]), "species": np.int32(record["species"]),
            "semantic_mask": PET_TRIMAP_TO_CLASS[trimap.reshape(trimap.shape[:2])]}

  image = _image_feature(builder)
  features = {"image": image, "label": _class_feature(info["label"]), "species": _class_feature(info["species"]),
              "semantic_mask": F.Feature("mask", image.shape[:2], "uint8", len(PET_MASK_CLASSES), PET_MASK_CLASSES)}
  return Mapping(features, convert)


def _celeb_a(builder: tfds.core.DatasetBuilder) -> Mapping:
  attribute_names = tuple(builder.info.features["attributes"].keys())

  def convert(record: Record) -> Example:
    landmarks = record["landmarks"]
    keypoints = np.ones((len(CELEB_A_KEYPOINTS), 3), np.float32)
    for i, point in enumerate(CELEB_A_KEYPOINTS):
      keypoints[i, 0] = float(landmarks[f"{point}_x"]) + 0.5
      keypoints[i, 1] = float(landmarks[f"{point}_y"]) + 0.5
    attributes = np.asarray([bool(record["attributes"][n]) for n in attribute_names], np.float32)
    return {"image": _image_of(record), "keypoints": keypoints, "attributes": attributes,
            "identity": np.int32(record["identity"]["Identity_No"])}

  features = {
      "image": _image_feature(builder),
      "keypoints": F.Feature("keypoints", (len(CELEB_A_KEYPOINTS), 3), "float32",
                             keypoint_names=CELEB_A_KEYPOINT_NAMES, flip_pairs=CELEB_A_FLIP_PAIRS),
      "attributes": F.Feature("value", (len(attribute_names),), "float32", class_names=attribute_names),
      "identity": F.Feature("identity", (), "int32")}
  return Mapping(features, convert)


def _text(value: Any) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def lfw_names(builder: tfds.core.DatasetBuilder, chunk: int = 1024) -> tuple[str, ...]:
  """The sorted person names of every split of a prepared LFW (reads the records without decoding images)."""
  features = builder.info.features
  parser = tfds.core.example_parser.ExampleParserNp(features.get_serialized_info())
  names = set()
  for split in builder.info.splits:
    raw = builder.as_data_source(split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
    for start in range(0, len(raw), chunk):
      for record in raw.__getitems__(list(range(start, min(start + chunk, len(raw))))):
        names.add(_text(parser.parse_example(record)["label"]))
  return tuple(sorted(names))


def _lfw(builder: tfds.core.DatasetBuilder) -> Mapping:
  names = lfw_names(builder)
  index = {name: i for i, name in enumerate(names)}

  def convert(record: Record) -> Example:
    return {"image": _image_of(record), "identity": np.int32(index[_text(record["label"])])}

  features = {"image": _image_feature(builder), "identity": F.Feature("identity", (), "int32", len(names), names)}
  return Mapping(features, convert)


def _omniglot(builder: tfds.core.DatasetBuilder) -> Mapping:
  info = builder.info.features

  def convert(record: Record) -> Example:
    return {"image": _image_of(record), "label": np.int32(record["label"]), "alphabet": np.int32(record["alphabet"])}

  features = {"image": _image_feature(builder), "label": _class_feature(info["label"]),
              "alphabet": _class_feature(info["alphabet"])}
  return Mapping(features, convert)


def _unlabelled(builder: tfds.core.DatasetBuilder) -> Mapping:
  return Mapping({"image": _image_feature(builder)}, lambda record: {"image": _image_of(record)})


def is_classification(builder: tfds.core.DatasetBuilder) -> bool:
  """Whether the supervised keys (default image, label) are an image-like feature and a class label."""
  keys = builder.info.supervised_keys or ("image", "label")
  if not isinstance(keys, tuple) or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
    return False
  image_key, label_key = keys
  features = builder.info.features
  return (image_key in features and label_key in features
          and isinstance(features[label_key], tfds.features.ClassLabel)
          and not isinstance(features[image_key], (tfds.features.ClassLabel, tfds.features.Text)))


def _has_boxes(builder: tfds.core.DatasetBuilder) -> bool:
  features = builder.info.features
  objects = features["objects"] if "objects" in features else None
  return (isinstance(objects, tfds.features.Sequence) and isinstance(objects.feature, tfds.features.FeaturesDict)
          and "bbox" in objects.feature)


_DETECTION_NAMES = {"voc": "voc/2007, voc/2012", "coco": "coco/2014, coco/2017"}
_BY_NAME = {"oxford_iiit_pet": _oxford_iiit_pet, "celeb_a": _celeb_a, "lfw": _lfw, "omniglot": _omniglot,
            "cycle_gan": _unlabelled}


def mapping(builder: tfds.core.DatasetBuilder, max_objects: int = 32) -> Mapping | None:
  """How to read a prepared TFDS dataset; None for a plain (image, class label) dataset read as it is.

  Args:
    builder: the dataset's builder (its name and features decide the mapping).
    max_objects: M, the rows boxes and box labels are padded to (detection datasets).

  Returns:
    A `Mapping`, or None.

  Raises:
    DataError: a dataset (or config, e.g. coco/2017_panoptic) none of the mappings fits.
  """
  name = builder.name
  config = f"/{builder.builder_config.name}" if builder.builder_config else ""
  if name in _BY_NAME:
    return _BY_NAME[name](builder)
  if _has_boxes(builder):
    return _detection(builder, max_objects)
  if name in _DETECTION_NAMES:
    raise DataError(f"dataset {name}{config} has no `objects` boxes (e.g. coco/2017_panoptic); use its detection "
                    f"configs ({_DETECTION_NAMES[name]})")
  if is_classification(builder):
    return None
  if "image" in builder.info.features and isinstance(builder.info.features["image"], tfds.features.Image):
    return _unlabelled(builder)
  raise DataError(f"dataset {name}{config} has no image with a class label, objects or masks that vision_jax can "
                  "map; pick an image dataset (classification, detection, segmentation) or another config")
