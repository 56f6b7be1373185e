"""Pascal VOC folders: `Annotations/<id>.xml`, `JPEGImages/`, `ImageSets/Main/<split>.txt`, optional masks.

  * Splits: the ids listed in `ImageSets/Main/<split>.txt` (else `ImageSets/Segmentation/<split>.txt`); "all"
    without such a file is every `Annotations/*.xml`.
  * Boxes: VOC's `bndbox` counts pixels from 1 and includes both end pixels, so pixels xmin..xmax (1-based)
    cover [xmin - 1, xmax) in our pixel convention: x1, y1, x2, y2 = xmin - 1, ymin - 1, xmax, ymax.
  * Classes: the names in `classes.txt` at the root (one per line) when present; else the 20 VOC classes when
    every object name of the split is one of them; else every name found in `Annotations/`, sorted
    (a custom dataset should list its names in classes.txt, so that every split gets the same classes).
  * `difficult` objects are kept, flagged in the `difficult` feature (uint8 [M], 0 in padding rows).
  * `SegmentationClass/<id>.png` (a palette PNG of class indices, 0 = background, 255 = boundary) gives
    `semantic_mask` [H, W] with classes ("background", *class names) and 255 = `features.IGNORE_INDEX`;
    `SegmentationObject/<id>.png` (value k = k-th object of the XML) gives `instance_masks` [M, H, W]. Each is
    a feature only when every image of the split has its PNG.
The XML files are parsed when the dataset is loaded; image and mask files are decoded when an example is read.
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from vision_jax.data import features
from vision_jax.data.features import DatasetSpec, Feature
from vision_jax.data.formats import images, objects
from vision_jax.data.formats.source import FileSource, error_summary, read_names, require_directory
from vision_jax.errors import DataError

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


@dataclasses.dataclass
class VocObject:
  """One `<object>` of an annotation file."""

  name: str
  box: tuple[float, float, float, float]  # x1, y1, x2, y2 in our pixel convention
  difficult: bool


@dataclasses.dataclass
class VocImage:
  """One image id with its objects and optional mask files."""

  image_path: str
  xml_path: str
  width: int
  height: int
  boxes: np.ndarray  # float32 [m, 4]
  labels: np.ndarray  # int32 [m]
  difficult: np.ndarray  # uint8 [m]
  class_mask_path: str | None = None
  object_mask_path: str | None = None


class VocSource(FileSource):
  """Examples of a VOC split: image, boxes, box_labels, num_objects, difficult (and the masks there are)."""

  def __init__(self, name: str, records: list[VocImage], max_objects: int, channels: int):
    super().__init__(name, records, max_objects)
    self.channels = channels

  def _read(self, record: VocImage) -> dict[str, np.ndarray]:
    image = images.read_image_of_size(record.image_path, self.channels, record.width, record.height,
                                      record.xml_path, "fix <size> in the XML")
    example = {"image": image, "boxes": record.boxes, "box_labels": record.labels, "difficult": record.difficult}
    if record.class_mask_path:
      example["semantic_mask"] = images.same_size_mask(record.class_mask_path, image, record.image_path)
    if record.object_mask_path:
      object_mask = images.same_size_mask(record.object_mask_path, image, record.image_path)
      example["instance_masks"] = (object_mask[None] == np.arange(1, len(record.boxes) + 1)[:, None, None])
      example["instance_masks"] = example["instance_masks"].astype(np.uint8)
    return objects.pad_example(example, self.max_objects, self.drops, ("difficult",))


def _number(node: ElementTree.Element, path: str, where: str) -> float:
  text = node.findtext(path)
  try:
    return float(text)
  except (TypeError, ValueError):
    raise DataError(f"{where} has no valid <{path}> number; fix the annotation file") from None


def parse_annotation(xml_path: str) -> tuple[ElementTree.Element, list[VocObject]]:
  """The root element and objects of a VOC annotation file.

  Raises:
    DataError: a missing file, malformed XML or an object without a name or a numeric bndbox.
  """
  if not os.path.isfile(xml_path):
    raise DataError(f"annotation file {xml_path} does not exist; add it or remove its id from the split file")
  try:
    root = ElementTree.parse(xml_path).getroot()
  except ElementTree.ParseError as e:
    raise DataError(f"annotation file {xml_path} is not valid XML ({error_summary(e)}); fix or re-export it") \
        from None
  found = []
  for n, node in enumerate(root.iter("object")):
    where = f"{xml_path} object {n}"
    name = (node.findtext("name") or "").strip()
    if not name:
      raise DataError(f"{where} has no <name>; fix the annotation file")
    xmin, ymin, xmax, ymax = (_number(node, f"bndbox/{k}", where) for k in ("xmin", "ymin", "xmax", "ymax"))
    difficult = (node.findtext("difficult") or "0").strip() not in ("0", "")
    found.append(VocObject(name, (xmin - 1, ymin - 1, xmax, ymax), difficult))
  return root, found


def _split_ids(root: str, split: str) -> list[str]:
  for folder in ("Main", "Segmentation"):
    listing = os.path.join(root, "ImageSets", folder, f"{split}.txt")
    if os.path.isfile(listing):
      with open(listing, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]
  if split == "all":
    return sorted(f[:-4] for f in os.listdir(os.path.join(root, "Annotations")) if f.endswith(".xml"))
  main = os.path.join(root, "ImageSets", "Main")
  known = sorted(f[:-4] for f in os.listdir(main) if f.endswith(".txt") and "_" not in f) if os.path.isdir(main) else []
  raise DataError(f"VOC dataset {root} has no split file ImageSets/Main/{split}.txt (splits: "
                  f"{', '.join(known + ['all']) }); choose one of them or write the split file")


def _stated_size(annotation: ElementTree.Element, xml_path: str) -> tuple[int, int]:
  """(width, height) from <size>, (0, 0) when it is absent."""
  if annotation.find("size/width") is None or annotation.find("size/height") is None:
    return 0, 0
  return int(_number(annotation, "size/width", xml_path)), int(_number(annotation, "size/height", xml_path))


def _image_path(root: str, image_id: str, annotation: ElementTree.Element) -> str:
  directory = os.path.join(root, "JPEGImages")
  candidates = [(annotation.findtext("filename") or "").strip()] + [image_id + e for e in images.IMAGE_EXTENSIONS]
  for candidate in candidates:
    if candidate and os.path.isfile(os.path.join(directory, candidate)):
      return os.path.join(directory, candidate)
  return os.path.join(directory, image_id + ".jpg")


def _class_names(root: str, found: set[str]) -> tuple[str, ...]:
  listed = read_names(os.path.join(root, "classes.txt"))
  if listed is not None:
    return listed
  if found <= set(VOC_CLASSES):
    return VOC_CLASSES
  directory = os.path.join(root, "Annotations")
  for xml_name in sorted(os.listdir(directory)):
    if xml_name.endswith(".xml"):
      found |= {o.name for o in parse_annotation(os.path.join(directory, xml_name))[1]}
  return tuple(sorted(found))


def load_voc(root: str, split: str, *, max_objects: int = 32, channels: int = 3,
             strict: bool = False) -> tuple[VocSource, DatasetSpec]:
  """Opens a split of a Pascal VOC folder.

  Args:
    root: the folder holding Annotations/, JPEGImages/ and ImageSets/ (e.g. VOCdevkit/VOC2012).
    split: a split file name, e.g. "train", "val", "trainval", or "all".
    max_objects: M, rows of the padded object features.
    channels: 1 or 3, channels of the decoded images.
    strict: make a missing image file an error instead of skipping it.

  Returns:
    (source, spec): image uint8 [H, W, C] (H = W = 0 when sizes vary), boxes float32 [M, 4], box_labels int32
    [M], num_objects int32 [], difficult uint8 [M], and semantic_mask uint8 [H, W] / instance_masks uint8
    [M, H, W] when the split has those PNGs.

  Raises:
    DataError: a missing folder, split or annotation file, malformed XML, a bad box, an object name not in
      classes.txt, a missing image when strict.
  """
  for folder in ("Annotations", "JPEGImages"):
    require_directory(os.path.join(root, folder), "VOC folder", f"point the dataset at a VOC root with {folder}/")
  name = f"voc:{root}"
  parsed = []
  for image_id in _split_ids(root, split):
    xml_path = os.path.join(root, "Annotations", image_id + ".xml")
    annotation, found = parse_annotation(xml_path)
    parsed.append((image_id, xml_path, annotation, found))
  class_names = _class_names(root, {o.name for *_, found in parsed for o in found})
  label_of = {n: i for i, n in enumerate(class_names)}
  source = VocSource(name, [], max_objects, channels)
  for image_id, xml_path, annotation, found in parsed:
    image_path = _image_path(root, image_id, annotation)
    if not os.path.isfile(image_path):
      if strict:
        raise DataError(f"image file {image_path} of {xml_path} does not exist; add it or remove the id from the "
                        "split file")
      source.skipped.add(os.path.relpath(image_path, root))
      continue
    width, height = _stated_size(annotation, xml_path)
    if not width or not height:
      width, height = images.image_size(image_path)
    unknown = [o.name for o in found if o.name not in label_of]
    if unknown:
      raise DataError(f"{xml_path} has object class {unknown[0]!r}, which is not in classes.txt; add it there or "
                      "fix the annotation")
    boxes = objects.checked_boxes(np.asarray([o.box for o in found], np.float64), width, height, xml_path)
    record = VocImage(image_path, xml_path, width, height, boxes,
                      np.asarray([label_of[o.name] for o in found], np.int32),
                      np.asarray([o.difficult for o in found], np.uint8))
    for field, folder in (("class_mask_path", "SegmentationClass"), ("object_mask_path", "SegmentationObject")):
      mask_path = os.path.join(root, folder, image_id + ".png")
      setattr(record, field, mask_path if os.path.isfile(mask_path) else None)
    source.records.append(record)
  if not source.records:
    raise DataError(f"VOC split {split!r} of {root} has no images in JPEGImages/; check the folder")
  return source, features.make_spec(name, split, len(source), _voc_features(source, class_names, channels))


def _voc_features(source: VocSource, class_names: tuple[str, ...], channels: int) -> dict[str, Feature]:
  records = source.records
  image_shape = images.shared_image_shape([(r.width, r.height) for r in records], channels)
  object_masks = all(r.object_mask_path for r in records)
  typed = objects.detection_features(image_shape, source.max_objects, class_names, object_masks)
  typed["difficult"] = Feature("value", (source.max_objects,), "uint8")
  if all(r.class_mask_path for r in records):
    typed["semantic_mask"] = Feature("mask", image_shape[:2], "uint8", len(class_names) + 1,
                                     ("background",) + tuple(class_names))
  for r in records:  # masks not shared by the whole split are not read
    r.class_mask_path = r.class_mask_path if "semantic_mask" in typed else None
    r.object_mask_path = r.object_mask_path if object_masks else None
  return typed
