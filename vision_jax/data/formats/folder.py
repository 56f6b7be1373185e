"""Image folders as `keras.utils.image_dataset_from_directory` reads them: `root/<class>/**/*.png|jpg|...`.

Classes are the subfolders of the root, sorted by name (label i = i-th name); hidden folders and files directly
in the root are ignored; images are found in subfolders of a class folder too. Every image's header is read
when the dataset is loaded (its size, and whether PIL can open it); an unreadable file is skipped and named in
a note (`source.notes()`), or is an error in strict mode. Pixels are decoded when an example is read, converted
to `channels` channels as `images.read_image` describes. The train/validation split is a seeded random cut by
`validation_fraction` (`source.split_indices`), not stratified by class.
"""

from __future__ import annotations

import os

import numpy as np

from vision_jax.data import features
from vision_jax.data.features import DatasetSpec, Feature
from vision_jax.data.formats import images
from vision_jax.data.formats.source import FileSource, require_directory, split_indices
from vision_jax.errors import DataError


class FolderSource(FileSource):
  """Examples {"image": uint8 [H, W, C], "label": int32 []} of an image folder; records are (path, label)."""

  def __init__(self, name: str, records: list[tuple[str, int]], channels: int):
    super().__init__(name, records)
    self.channels = channels

  def _read(self, record: tuple[str, int]) -> dict[str, np.ndarray]:
    path, label = record
    return {"image": images.read_image(path, self.channels), "label": np.int32(label)}


def load_folder(root: str, split: str, *, validation_fraction: float = 0.2, seed: int = 0, channels: int = 3,
                strict: bool = False) -> tuple[FolderSource, DatasetSpec]:
  """Opens a split of an image folder.

  Args:
    root: the folder holding one subfolder per class.
    split: "train", "validation" or "all".
    validation_fraction: fraction of the images held out as the validation split.
    seed: seed of the split.
    channels: 1 or 3, channels of the decoded images.
    strict: make an unreadable image file an error instead of skipping it.

  Returns:
    (source, spec): features image uint8 [H, W, C] (H = W = 0 when sizes vary) and label int32 [].

  Raises:
    DataError: a missing root, no class folders, a class folder without (readable) images, an unreadable file
      when strict.
  """
  require_directory(root, "image folder", "point the dataset at a folder holding one subfolder per class")
  class_names = sorted(d for d in os.listdir(root) if not d.startswith(".") and os.path.isdir(os.path.join(root, d)))
  if not class_names:
    raise DataError(f"image folder {root} has no class subfolders; put the images of each class in "
                    f"{os.path.join(root, '<class name>')}/")
  name = f"folder:{root}"
  source = FolderSource(name, [], channels)
  records, sizes = [], []
  for label, class_name in enumerate(class_names):
    class_dir = os.path.join(root, class_name)
    paths = images.list_images(class_dir)
    if not paths:
      raise DataError(f"class folder {class_dir} has no image files ({', '.join(images.IMAGE_EXTENSIONS)}); "
                      "add images or remove the folder")
    readable = images.readable_sizes(paths, root, strict, source.skipped)
    if not readable:
      raise DataError(f"class folder {class_dir} has no readable images; replace the files or remove the folder")
    records += [(path, label) for path, _ in readable]
    sizes += [size for _, size in readable]
  chosen = split_indices(len(records), split, validation_fraction, seed, name)
  source.records = [records[i] for i in chosen]
  image_shape = images.shared_image_shape(sizes, channels)
  spec = features.make_spec(name, split, len(source), {
      "image": Feature("image", image_shape, "uint8"),
      "label": Feature("label", (), "int32", len(class_names), tuple(class_names))})
  return source, spec
