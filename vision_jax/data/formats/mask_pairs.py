"""Folders of image/mask pairs for semantic segmentation: `images/NAME.jpg|png|...` with `masks/NAME.png`.

  * Masks are single-channel class indices (an "L" or palette PNG; a palette PNG's indices are used, not its
    colours); 255 is `features.IGNORE_INDEX` (unlabelled). A mask is found by the image's path under images/
    with its extension replaced (.png first, then the other image extensions).
  * Layout: `images/<split>/` with `masks/<split>/` when that folder exists ("validation" also finds "val");
    else all of `images/`, cut into "train" / "validation" by a seeded `validation_fraction`, or "all".
  * Classes: the names in `classes.txt` at the root, one per line (index order); without it, every mask is read
    once at load time (all splits) and the classes are "0".."K-1" with K = 1 + the largest value below 255.
Image and mask headers are read when the dataset is loaded (a mask of another size than its image is an error
then); pixels are decoded when an example is read.
"""

from __future__ import annotations

import os

import numpy as np

from vision_jax.data import features
from vision_jax.data.features import IGNORE_INDEX, DatasetSpec, Feature
from vision_jax.data.formats import images
from vision_jax.data.formats.source import FileSource, read_names, require_directory
from vision_jax.errors import DataError


class MaskPairSource(FileSource):
  """Examples {"image": uint8 [H, W, C], "semantic_mask": uint8 [H, W]}; records are (image path, mask path)."""

  def __init__(self, name: str, records: list[tuple[str, str]], channels: int, num_classes: int):
    super().__init__(name, records)
    self.channels = channels
    self.num_classes = num_classes

  def _read(self, record: tuple[str, str]) -> dict[str, np.ndarray]:
    image_path, mask_path = record
    image = images.read_image(image_path, self.channels)
    mask = images.same_size_mask(mask_path, image, image_path)
    check_classes(mask, self.num_classes, mask_path)
    return {"image": image, "semantic_mask": mask}


def check_classes(mask: np.ndarray, num_classes: int, mask_path: str) -> None:
  """Raises a one-line `DataError` when a mask holds a value >= num_classes other than `IGNORE_INDEX`."""
  bad = mask[(mask >= num_classes) & (mask != IGNORE_INDEX)]
  if bad.size:
    raise DataError(f"mask {mask_path} has class {int(bad.max())} but there are {num_classes} classes; fix the "
                    f"mask or classes.txt (use {IGNORE_INDEX} for unlabelled pixels)")


def _mask_path(mask_root: str, image_root: str, image_path: str) -> str:
  stem = os.path.splitext(os.path.join(mask_root, os.path.relpath(image_path, image_root)))[0]
  for extension in (".png",) + images.IMAGE_EXTENSIONS:
    if os.path.isfile(stem + extension):
      return stem + extension
  raise DataError(f"image {image_path} has no mask {stem}.png; add the mask or remove the image")


def load_mask_pairs(root: str, split: str, *, validation_fraction: float = 0.2, seed: int = 0, channels: int = 3,
                    strict: bool = False) -> tuple[MaskPairSource, DatasetSpec]:
  """Opens a split of a folder of image/mask pairs.

  Args:
    root: the folder holding images/, masks/ (and optionally classes.txt).
    split: a folder under images/ (e.g. "train", "val"), or, for a flat images/, "train", "validation" or "all".
    validation_fraction: fraction held out as "validation" when images/ has no split folders.
    seed: seed of that split.
    channels: 1 or 3, channels of the decoded images.
    strict: make an unreadable image an error instead of skipping it.

  Returns:
    (source, spec): image uint8 [H, W, C] and semantic_mask uint8 [H, W] (H = W = 0 when sizes vary).

  Raises:
    DataError: a missing folder, an image without a mask, a mask of another size than its image, a colour mask,
      a mask value outside classes.txt, an unreadable image when strict.
  """
  image_root, mask_root = os.path.join(root, "images"), os.path.join(root, "masks")
  for folder in (image_root, mask_root):
    require_directory(folder, "segmentation folder", "point the dataset at a folder holding images/ and masks/")
  name = f"mask_pairs:{root}"
  source = MaskPairSource(name, [], channels, 0)
  readable = images.split_images(image_root, split, validation_fraction, seed, strict, source.skipped, name)
  for image_path, size in readable:
    mask_path = _mask_path(mask_root, image_root, image_path)
    mask_size = images.image_size(mask_path)
    if mask_size != size:
      raise DataError(f"mask {mask_path} is {mask_size[0]}x{mask_size[1]} but its image {image_path} is "
                      f"{size[0]}x{size[1]}; save the mask at the image's size")
    source.records.append((image_path, mask_path))
  class_names = read_names(os.path.join(root, "classes.txt"))
  if class_names is None:
    masks = (images.read_mask(path) for path in images.list_images(mask_root))  # every split's masks
    largest = max((int(mask[mask != IGNORE_INDEX].max(initial=0)) for mask in masks), default=0)
    class_names = tuple(str(i) for i in range(largest + 1))
  source.num_classes = len(class_names)
  image_shape = images.shared_image_shape([size for _, size in readable], channels)
  return source, features.make_spec(name, split, len(source), {
      "image": Feature("image", image_shape, "uint8"),
      "semantic_mask": Feature("mask", image_shape[:2], "uint8", len(class_names), class_names)})
