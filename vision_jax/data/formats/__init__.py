"""Users' own datasets in the formats they already have, as lazy random-access sources with typed specs.

  kind          path                                          examples
  "folder"      ROOT with ROOT/<class>/*.png|jpg|jpeg|bmp|gif  image, label                            folder.py
  "coco"        ANNOTATIONS.json@IMAGE_DIR, ANNOTATIONS.json   image, boxes, box_labels, num_objects,   coco.py
                (images beside it) or a directory with          num_crowd, instance_masks
                annotations/instances_<split>.json + <split>/
  "voc"         VOC root (Annotations/, JPEGImages/,           image, boxes, box_labels, num_objects,   voc.py
                ImageSets/Main/<split>.txt)                     difficult (+ semantic_mask, instance_masks)
  "yolo"        ROOT with images/, labels/, classes.txt        image, boxes, box_labels, num_objects    yolo.py
  "mask_pairs"  ROOT with images/, masks/ (+ classes.txt)      image, semantic_mask                     mask_pairs.py
  "idx"         ROOT with <split>-images-idx3-ubyte[.gz] and     image (as stored), label                idx.py
                <split>-labels-idx1-ubyte[.gz] (MNIST's format;
                "test" reads t10k-*) (+ classes.txt)

The "idx" files are read whole into memory when a split is loaded; the other kinds read only metadata then.
Metadata (file lists, annotation files, image headers) is read by `load`; an example's files are decoded when
`source[i]` is read. Every source has `len`, `__getitem__`, `__getitems__` (for grain) and `notes()`, which
returns the one-time notes (skipped unreadable files, objects dropped past `max_objects`) for the caller to
print. Mistakes in the data raise a one-line `vision_jax.errors.DataError` naming the file and the fix.
"""

from __future__ import annotations

from vision_jax.data.features import DatasetSpec
from vision_jax.data.formats.coco import load_coco
from vision_jax.data.formats.folder import load_folder
from vision_jax.data.formats.idx import load_idx
from vision_jax.data.formats.mask_pairs import load_mask_pairs
from vision_jax.data.formats.source import FileSource
from vision_jax.data.formats.voc import load_voc
from vision_jax.data.formats.yolo import load_yolo
from vision_jax.data.sources import ArraySource
from vision_jax.errors import ConfigError

KINDS = ("folder", "coco", "voc", "yolo", "mask_pairs", "idx")


def load(kind: str, path: str, split: str, *, max_objects: int = 32, validation_fraction: float = 0.2,
         seed: int = 0, channels: int = 3, strict: bool = False,
         masks: bool = True) -> tuple[FileSource | ArraySource, DatasetSpec]:
  """Opens a split of a dataset stored in one of `KINDS`.

  Args:
    kind: "folder", "coco", "voc", "yolo", "mask_pairs" or "idx".
    path: the dataset root (for "coco" see the table above and `coco.coco_paths`).
    split: "train" / "validation" / "all" for seeded splits (folder; yolo and mask_pairs without split
      folders); a split file or folder name otherwise (e.g. "val", "trainval", "val2017").
    max_objects: M, rows of padded object features (detection formats).
    validation_fraction: fraction held out as "validation" by seeded splits.
    seed: seed of seeded splits.
    channels: 1 or 3, channels of the decoded images ("idx" keeps the stored channels).
    strict: make an unreadable or missing image file an error instead of skipping it with a note.
    masks: decode COCO's instance_masks (False for box-only training saves the polygon/RLE decoding).

  Returns:
    (source, spec): `source[i]` is a dict of NumPy arrays with the features of `spec.features`.

  Raises:
    ConfigError: an unknown kind, a bad channel count or fraction.
    DataError: missing or malformed data (one line naming the file and the fix).
  """
  if channels not in (1, 3):
    raise ConfigError(f"channels {channels} is not supported; use 1 (grayscale) or 3 (RGB)")
  if max_objects < 1:
    raise ConfigError(f"max_objects {max_objects} must be at least 1")
  if kind == "folder":
    return load_folder(path, split, validation_fraction=validation_fraction, seed=seed, channels=channels,
                       strict=strict)
  if kind == "coco":
    return load_coco(path, split, max_objects=max_objects, channels=channels, strict=strict, masks=masks)
  if kind == "voc":
    return load_voc(path, split, max_objects=max_objects, channels=channels, strict=strict)
  if kind == "yolo":
    return load_yolo(path, split, max_objects=max_objects, validation_fraction=validation_fraction, seed=seed,
                     channels=channels, strict=strict)
  if kind == "mask_pairs":
    return load_mask_pairs(path, split, validation_fraction=validation_fraction, seed=seed, channels=channels,
                           strict=strict)
  if kind == "idx":
    return load_idx(path, split)
  raise ConfigError(f"unknown dataset format {kind!r}; formats: {', '.join(KINDS)}")
