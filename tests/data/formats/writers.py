"""Writers of small datasets in the users' formats, for the format tests (hand-made, no library under test)."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

VOC_NAMES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
             "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
             "tvmonitor")

# Three images (file name, width, height) with objects (x1, y1, x2, y2 integer pixels, class index): the same
# annotations written as COCO, VOC and YOLO. Sizes are powers of two so YOLO's fractions are exact.
SCENES = (
    ("a.png", 64, 32, [((2, 3, 20, 17), 14), ((0, 0, 64, 32), 6), ((40, 8, 41, 9), 0)]),
    ("b.png", 32, 64, [((5, 40, 27, 63), 11)]),
    ("c.png", 16, 16, []),
)


def write_image(path: str, pixels: np.ndarray | Image.Image) -> None:
  """Writes an array (or a PIL image) as an image file, format from the extension."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  (pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)).save(path)


def palette_image(indices: np.ndarray, palette: np.ndarray) -> Image.Image:
  """A "P" image of uint8 [H, W] indices into a uint8 [N, 3] palette."""
  image = Image.fromarray(indices.astype(np.uint8)).convert("P")
  image.putpalette(palette.astype(np.uint8).ravel().tolist())
  return image


def random_image(width: int, height: int, seed: int = 0) -> np.ndarray:
  """uint8 [H, W, 3] noise."""
  return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_coco(json_path: str, image_dir: str, scenes=SCENES, category_ids=None, extra: dict | None = None) -> dict:
  """Writes scenes as a COCO instances file (category id of class c: category_ids[c]) and their images.

  Returns:
    The JSON written (a dict), for tests that modify and rewrite it.
  """
  category_ids = category_ids or [3 * c + 7 for c in range(len(VOC_NAMES))]  # sparse, sorted like the classes
  data = {"images": [], "annotations": [],
          "categories": [{"id": category_ids[c], "name": n} for c, n in reversed(list(enumerate(VOC_NAMES)))]}
  for n, (file_name, width, height, objects) in enumerate(scenes):
    write_image(os.path.join(image_dir, file_name), random_image(width, height, n))
    data["images"].append({"id": 100 + n, "file_name": file_name, "width": width, "height": height})
    for (x1, y1, x2, y2), label in objects:
      data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": 100 + n, "iscrowd": 0,
                                  "category_id": category_ids[label], "bbox": [x1, y1, x2 - x1, y2 - y1],
                                  "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]]})
  data.update(extra or {})
  save_json(json_path, data)
  return data


def save_json(path: str, data: dict) -> None:
  """Writes a dict as JSON."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(data, f)


def voc_xml(file_name: str, width: int, height: int, objects) -> str:
  """A VOC annotation: objects are ((x1, y1, x2, y2) pixel box, class name, difficult)."""
  parts = [f"<annotation><filename>{file_name}</filename><size><width>{width}</width><height>{height}</height>"
           "<depth>3</depth></size>"]
  for (x1, y1, x2, y2), name, difficult in objects:
    parts.append(f"<object><name>{name}</name><difficult>{int(difficult)}</difficult><bndbox><xmin>{x1 + 1}</xmin>"
                 f"<ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
  return "".join(parts) + "</annotation>"


def write_voc(root: str, scenes=SCENES, split: str = "train", difficult=()) -> None:
  """Writes scenes as a VOC folder (JPEGImages as PNG files); objects whose (scene, object) is in `difficult`
  are flagged difficult."""
  ids = []
  for n, (file_name, width, height, objects) in enumerate(scenes):
    image_id = os.path.splitext(file_name)[0]
    ids.append(image_id)
    write_image(os.path.join(root, "JPEGImages", file_name), random_image(width, height, n))
    listed = [(box, VOC_NAMES[label], (n, i) in difficult) for i, (box, label) in enumerate(objects)]
    write_text(os.path.join(root, "Annotations", image_id + ".xml"), voc_xml(file_name, width, height, listed))
  write_text(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "\n".join(ids) + "\n")


def write_yolo(root: str, scenes=SCENES) -> None:
  """Writes scenes as a YOLO folder (flat images/ and labels/, classes.txt)."""
  for n, (file_name, width, height, objects) in enumerate(scenes):
    write_image(os.path.join(root, "images", file_name), random_image(width, height, n))
    lines = [f"{label} {repr((x1 + x2) / 2 / width)} {repr((y1 + y2) / 2 / height)} {repr((x2 - x1) / width)} "
             f"{repr((y2 - y1) / height)}" for (x1, y1, x2, y2), label in objects]
    write_text(os.path.join(root, "labels", os.path.splitext(file_name)[0] + ".txt"), "\n".join(lines))
  write_text(os.path.join(root, "classes.txt"), "\n".join(VOC_NAMES) + "\n")


def write_text(path: str, text: str) -> None:
  """Writes a text file, making its folder."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)


def expected_objects(scene, max_objects: int) -> tuple[np.ndarray, np.ndarray]:
  """(boxes float32 [M, 4], box_labels int32 [M] with -1 padding) of a scene, written out by hand."""
  boxes = np.zeros((max_objects, 4), np.float32)
  labels = np.full((max_objects,), -1, np.int32)
  for i, (box, label) in enumerate(scene[3]):
    boxes[i], labels[i] = box, label
  return boxes, labels
