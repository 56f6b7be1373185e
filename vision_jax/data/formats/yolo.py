"""YOLO txt datasets: `images/**/NAME.jpg` with `labels/**/NAME.txt`, one `class cx cy w h` line per object.

  * Layout: `images/<split>/` and `labels/<split>/` when that folder exists (Ultralytics; "validation" also
    finds "val"); else every image under `images/`, cut into "train" / "validation" by a seeded
    `validation_fraction` (`source.split_indices`), or "all".
  * Boxes: centre x, centre y, width, height are fractions of the image width W and height H, so
    x1, y1, x2, y2 = (cx - w / 2) W, (cy - h / 2) H, (cx + w / 2) W, (cy + h / 2) H pixels, computed in float64
    (exact when W, H and the written fractions are dyadic, e.g. sizes that are powers of two).
  * Classes: the names in `classes.txt` (or Darknet's `obj.names`) at the root, one per line; a line's class
    is the 0-based index into them.
  * An image without a label file is kept with 0 objects (a background image).
Label files and image headers (for W and H) are read when the dataset is loaded; pixels when an example is read.
"""

from __future__ import annotations

import os

import numpy as np

from vision_jax.data import features
from vision_jax.data.formats import images, objects
from vision_jax.data.formats.source import FileSource, read_names, require_directory
from vision_jax.errors import DataError

NAME_FILES = ("classes.txt", "obj.names")


class YoloSource(FileSource):
  """Examples of a YOLO dataset: image, boxes, box_labels, num_objects; records are (path, boxes, labels)."""

  def __init__(self, name: str, records: list[tuple[str, np.ndarray, np.ndarray]], max_objects: int, channels: int):
    super().__init__(name, records, max_objects)
    self.channels = channels

  def _read(self, record: tuple[str, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    path, boxes, labels = record
    example = {"image": images.read_image(path, self.channels), "boxes": boxes, "box_labels": labels}
    return objects.pad_example(example, self.max_objects, self.drops)


def parse_label_file(path: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """The objects of a YOLO label file (none when the file does not exist).

  Returns:
    (float64 [m, 4] normalised cx, cy, w, h; int32 [m] class indices).

  Raises:
    DataError: a line that is not `class cx cy w h` with an integer class in 0..K-1 and four numbers.
  """
  rows, labels = [], []
  if os.path.isfile(path):
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, 1):
        values = line.split()
        if not values:
          continue
        try:
          if len(values) != 5:
            raise ValueError
          label, row = int(values[0]), [float(v) for v in values[1:]]
        except ValueError:
          raise DataError(f"{path} line {number} is {line.strip()!r}, not 'class cx cy w h' (an integer class and "
                          "4 numbers); fix the line") from None
        if not 0 <= label < num_classes:
          raise DataError(f"{path} line {number} has class {label}, outside 0..{num_classes - 1} of the class "
                          "names; fix the line or add the name to classes.txt")
        rows.append(row)
        labels.append(label)
  return np.asarray(rows, np.float64).reshape(-1, 4), np.asarray(labels, np.int32)


def to_pixel_corners(centres: np.ndarray, width: int, height: int) -> np.ndarray:
  """float64 [m, 4] x1, y1, x2, y2 pixels from [m, 4] normalised cx, cy, w, h of a W x H image."""
  half = centres[:, 2:] / 2
  scale = np.array([width, height, width, height], np.float64)
  return np.concatenate([centres[:, :2] - half, centres[:, :2] + half], axis=1) * scale


def load_yolo(root: str, split: str, *, max_objects: int = 32, validation_fraction: float = 0.2, seed: int = 0,
              channels: int = 3, strict: bool = False) -> tuple[YoloSource, features.DatasetSpec]:
  """Opens a split of a YOLO txt dataset.

  Args:
    root: the folder holding images/, labels/ and classes.txt.
    split: a folder under images/ (e.g. "train", "val"), or, for a flat images/, "train", "validation" or "all".
    max_objects: M, rows of the padded object features.
    validation_fraction: fraction held out as "validation" when images/ has no split folders.
    seed: seed of that split.
    channels: 1 or 3, channels of the decoded images.
    strict: make an unreadable image file an error instead of skipping it.

  Returns:
    (source, spec): image uint8 [H, W, C] (H = W = 0 when sizes vary), boxes float32 [M, 4], box_labels int32
    [M], num_objects int32 [].

  Raises:
    DataError: a missing folder or class names file, a malformed label line, an unknown class, a bad box, an
      unreadable image when strict.
  """
  image_root = os.path.join(root, "images")
  require_directory(image_root, "YOLO image folder", "point the dataset at a folder holding images/ and labels/")
  class_names = next((n for n in (read_names(os.path.join(root, f)) for f in NAME_FILES) if n), None)
  if class_names is None:
    raise DataError(f"YOLO dataset {root} has no class names; write {os.path.join(root, 'classes.txt')} with one "
                    "name per line, in class-index order")
  name = f"yolo:{root}"
  source = YoloSource(name, [], max_objects, channels)
  readable = images.split_images(image_root, split, validation_fraction, seed, strict, source.skipped, name)
  for path, (width, height) in readable:
    label_path = os.path.splitext(os.path.join(root, "labels", os.path.relpath(path, image_root)))[0] + ".txt"
    centres, labels = parse_label_file(label_path, len(class_names))
    boxes = objects.checked_boxes(to_pixel_corners(centres, width, height), width, height, label_path)
    source.records.append((path, boxes, labels))
  image_shape = images.shared_image_shape([size for _, size in readable], channels)
  typed = objects.detection_features(image_shape, max_objects, class_names, masks=False)
  return source, features.make_spec(name, split, len(source), typed)
