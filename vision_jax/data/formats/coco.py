"""COCO instances files: an annotation JSON ("images", "annotations", "categories") and a directory of images.

  * Boxes: `bbox` [x, y, w, h] in pixels becomes x1, y1, x2, y2 = x, y, x + w, y + h (boxes sticking out of
    the image by under a pixel are clipped; more is an error).
  * Labels: `box_labels` are contiguous indices 0..K-1 of the category ids sorted ascending; the source keeps
    `category_ids` (index -> COCO id) and the spec the category names in that order.
  * Crowd objects (`iscrowd` 1) are left out of boxes, labels and masks, and counted in `num_crowd`.
  * Masks: `instance_masks` [M, H, W] are decoded from polygons or RLE (`rle.py`) when an example is read.
  * Images listed without annotations are kept, with 0 objects. Images are kept in the order of the JSON.
An image file that does not exist is skipped and named in a note (`source.notes()`), or an error in strict mode.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

import numpy as np

from vision_jax.data import features
from vision_jax.data.features import DatasetSpec, Feature
from vision_jax.data.formats import images, objects, rle
from vision_jax.data.formats.source import FileSource, error_summary, require_directory
from vision_jax.errors import DataError


@dataclasses.dataclass
class CocoImage:
  """One image entry and its (non-crowd) objects."""

  path: str
  width: int
  height: int
  boxes: np.ndarray  # float32 [m, 4] xyxy pixels
  labels: np.ndarray  # int32 [m] contiguous category indices
  segmentations: list[Any]  # m `segmentation` values
  num_crowd: int
  where: str  # "ANNOTATIONS.json image id N", for errors


class CocoSource(FileSource):
  """Examples of a COCO instances file: image, boxes, box_labels, num_objects, num_crowd (and instance_masks).

  Attributes:
    category_ids: COCO category id of each contiguous label index.
  """

  def __init__(self, name: str, records: list[CocoImage], max_objects: int, channels: int, masks: bool,
               category_ids: tuple[int, ...]):
    super().__init__(name, records, max_objects)
    self.channels = channels
    self.masks = masks
    self.category_ids = category_ids

  def _read(self, record: CocoImage) -> dict[str, np.ndarray]:
    image = images.read_image_of_size(record.path, self.channels, record.width, record.height, record.where,
                                      "fix the width and height in the annotation file")
    example = {"image": image, "boxes": record.boxes, "box_labels": record.labels,
               "num_crowd": np.int32(record.num_crowd)}
    if self.masks:
      example["instance_masks"] = np.zeros((len(record.boxes), record.height, record.width), np.uint8)
      for i, segmentation in enumerate(record.segmentations):
        example["instance_masks"][i] = rle.segmentation_to_mask(segmentation, record.height, record.width,
                                                                f"{record.where} object {i}")
    return objects.pad_example(example, self.max_objects, self.drops)


def coco_paths(path: str, split: str) -> tuple[str, str]:
  """(annotation JSON, image directory) named by a COCO dataset path.

  Args:
    path: "ANNOTATIONS.json@IMAGE_DIR"; or "ANNOTATIONS.json" with the images beside it (as Roboflow exports);
      or a directory holding `annotations/instances_<split>.json` and the images in `<split>/` (COCO's own
      layout, e.g. split "val2017").
    split: the split, used only by the directory form.
  """
  if ".json@" in path:
    annotations, image_dir = path.split(".json@", 1)
    return annotations + ".json", image_dir
  if path.endswith(".json"):
    return path, os.path.dirname(path)
  return os.path.join(path, "annotations", f"instances_{split}.json"), os.path.join(path, split)


def _read_json(path: str) -> dict[str, Any]:
  if not os.path.isfile(path):
    raise DataError(f"COCO annotation file {path} does not exist; give 'ANNOTATIONS.json@IMAGE_DIR' or a "
                    "directory holding annotations/instances_<split>.json and <split>/")
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise DataError(f"COCO annotation file {path} is not valid JSON ({error_summary(e)}); fix or re-export it") \
        from None
  if not isinstance(data, dict) or not isinstance(data.get("images"), list) or \
      not isinstance(data.get("categories"), list) or not isinstance(data.get("annotations", []), list):
    raise DataError(f"COCO annotation file {path} lacks the 'images' and 'categories' lists of an instances file; "
                    "give a COCO instances JSON")
  return data


def _field(entry: Any, key: str, kind: type, where: str | Callable[[], str]) -> Any:
  """entry[key] converted to `kind`, or a one-line DataError naming the entry (`where`, or what it returns)."""
  try:
    return kind(entry[key])
  except (KeyError, TypeError, ValueError):
    raise DataError(f"{where() if callable(where) else where} has no valid {key!r} ({kind.__name__}); fix the "
                    "annotation file") from None


def _is_xywh(bbox: Any) -> bool:
  return isinstance(bbox, list) and len(bbox) == 4 and all(type(v) in (int, float) for v in bbox)


def _objects_by_image(data: dict[str, Any], json_path: str, sizes: dict[int, tuple[int, int]],
                      label_of: dict[int, int]) -> dict[int, list[tuple[np.ndarray, int, Any, bool]]]:
  """image id -> [(checked xyxy box, label index, segmentation, iscrowd)] in file order."""
  annotations = data.get("annotations", [])
  where = lambda n: (f"{json_path} annotation {n} (id "
                     f"{annotations[n].get('id', '?') if isinstance(annotations[n], dict) else '?'})")
  image_ids, labels, bboxes = [], [], []
  for n, annotation in enumerate(annotations):
    image_ids.append(_field(annotation, "image_id", int, lambda: where(n)))
    category_id = _field(annotation, "category_id", int, lambda: where(n))
    if image_ids[-1] not in sizes:
      raise DataError(f"{where(n)} refers to image id {image_ids[-1]}, which is not in 'images'; fix or drop it")
    if category_id not in label_of:
      raise DataError(f"{where(n)} has unknown category id {category_id} (known: {sorted(label_of)}); add it to "
                      "'categories' or fix the annotation")
    labels.append(label_of[category_id])
    bboxes.append(annotation.get("bbox"))
  if not all(map(_is_xywh, bboxes)):
    n = next(n for n, bbox in enumerate(bboxes) if not _is_xywh(bbox))
    raise DataError(f"{where(n)} has no 'bbox' of 4 numbers [x, y, width, height]; fix the annotation file")
  xywh = np.asarray(bboxes, np.float64).reshape(-1, 4)
  image_sizes = np.asarray([sizes[i] for i in image_ids], np.float64).reshape(-1, 2)
  boxes = objects.checked_boxes(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
                                image_sizes[:, 0], image_sizes[:, 1], where)
  by_image: dict[int, list] = {i: [] for i in sizes}
  for n, annotation in enumerate(annotations):
    by_image[image_ids[n]].append((boxes[n], labels[n], annotation.get("segmentation"),
                                   bool(annotation.get("iscrowd", 0))))
  return by_image


def load_coco(path: str, split: str, *, max_objects: int = 32, channels: int = 3, strict: bool = False,
              masks: bool = True) -> tuple[CocoSource, DatasetSpec]:
  """Opens a COCO instances file.

  Args:
    path: see `coco_paths`.
    split: the split name (chooses the files only in the directory form of `path`).
    max_objects: M, rows of the padded object features.
    channels: 1 or 3, channels of the decoded images.
    strict: make a missing image file an error instead of skipping it.
    masks: decode `instance_masks` [M, H, W] (off saves the decoding for box-only training).

  Returns:
    (source, spec): image uint8 [H, W, C] (H = W = 0 when sizes vary), boxes float32 [M, 4], box_labels int32
    [M], num_objects int32 [], num_crowd int32 [], and instance_masks uint8 [M, H, W] when `masks`.

  Raises:
    DataError: a missing or malformed file, an unknown category or image id, a bad box, a missing image when
      strict.
  """
  json_path, image_dir = coco_paths(path, split)
  data = _read_json(json_path)
  require_directory(image_dir, "COCO image directory", "give it as 'ANNOTATIONS.json@IMAGE_DIR'")
  category_ids = sorted(_field(c, "id", int, f"{json_path} category {n}") for n, c in enumerate(data["categories"]))
  names_by_id = {int(c["id"]): str(c.get("name", c["id"])) for c in data["categories"]}
  label_of = {category_id: index for index, category_id in enumerate(category_ids)}
  entries = []  # (image id, where, file name, width, height)
  for n, entry in enumerate(data["images"]):
    where = f"{json_path} image {n}"
    entries.append((_field(entry, "id", int, where), where, _field(entry, "file_name", str, where),
                    _field(entry, "width", int, where), _field(entry, "height", int, where)))
  by_image = _objects_by_image(data, json_path, {e[0]: (e[3], e[4]) for e in entries}, label_of)
  name = f"coco:{json_path}"
  source = CocoSource(name, [], max_objects, channels, masks, tuple(category_ids))
  for image_id, where, file_name, width, height in entries:
    image_path = os.path.join(image_dir, file_name)
    if not os.path.isfile(image_path):
      if strict:
        raise DataError(f"image file {image_path} of {where} does not exist; add it or fix the image directory")
      source.skipped.add(file_name)
      continue
    found = by_image[image_id]
    kept = [o for o in found if not o[3]]
    boxes = np.asarray([o[0] for o in kept], np.float32).reshape(-1, 4)
    source.records.append(CocoImage(image_path, width, height, boxes, np.asarray([o[1] for o in kept], np.int32),
                                    [o[2] for o in kept], len(found) - len(kept), f"{where} (id {image_id})"))
  if not source.records:
    raise DataError(f"none of the images of {json_path} are in {image_dir}; give the image directory as "
                    "'ANNOTATIONS.json@IMAGE_DIR'")
  class_names = tuple(names_by_id[i] for i in category_ids)
  image_shape = images.shared_image_shape([(r.width, r.height) for r in source.records], channels)
  typed = objects.detection_features(image_shape, max_objects, class_names, masks)
  typed["num_crowd"] = Feature("value", (), "int32")
  return source, features.make_spec(name, split, len(source), typed)
