"""The IDX files of MNIST and the data sets released in its format (Fashion-MNIST, KMNIST, EMNIST).

A root directory holds, per split, an image file and a label file, gzipped or not:
`<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` (the names of LeCun's and Zalando's
releases; the variant `<prefix>-images.idx3-ubyte` is accepted too). The split "test" reads the prefix `t10k`
(MNIST's name) or `test`; any other split reads its own name as the prefix ("train"). An optional `classes.txt`
in the root names the classes, one per line; otherwise they are named by their numbers.

The format (LeCun et al., "The MNIST database"): two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, each dimension as a big-endian uint32, then
the data, big-endian, in C order. Images keep the stored channels ([N, H, W] files give [H, W, 1] examples), so
the loader's `channels` option does not apply. Whole splits are read into memory when loaded (Fashion-MNIST's
60,000 training images take 47 MB).
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib

import numpy as np

from vision_jax.data.features import DatasetSpec, Feature, make_spec
from vision_jax.data.formats.source import read_names, require_directory
from vision_jax.data.sources import ArraySource
from vision_jax.errors import DataError

DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file, gzipped or not (told by its first bytes, not its name).

  Args:
    path: the file.

  Returns:
    The array with the stored shape, in native byte order (uint8 data stays uint8).

  Raises:
    DataError: a file that cannot be read, is not IDX, or does not hold the bytes its header says.
  """
  try:
    with open(path, "rb") as f:
      data = f.read()
    if data[:2] == _GZIP_MAGIC:
      data = gzip.decompress(data)
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f"cannot read IDX file {path}: {e}; check the file (re-download it if it is truncated)") from None
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in DTYPES:
    raise DataError(f"{path} is not an IDX file (its first bytes {data[:4].hex()} are not 00 00 <type> <dims>); "
                    "point the dataset at MNIST-format files")
  ndim = data[3]
  header = 4 + 4 * ndim
  if ndim == 0 or len(data) < header:
    raise DataError(f"{path}: an IDX header with {ndim} dimensions does not fit in {len(data)} bytes; the file is "
                    "damaged, re-download it")
  shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
  dtype = np.dtype(DTYPES[data[2]])
  expected = header + int(np.prod(shape)) * dtype.itemsize
  if len(data) != expected:
    raise DataError(f"{path}: the header says shape {shape} of {dtype.name} ({expected} bytes with the header) but "
                    f"the file holds {len(data)} bytes; the file is truncated or damaged, re-download it")
  return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def split_paths(root: str, split: str) -> tuple[str, str]:
  """(image file, label file) of a split under `root`; the first of the accepted names that exists.

  Raises:
    DataError: no image or label file for the split, naming the files looked for.
  """
  prefixes = ("t10k", "test") if split == "test" else (split,)
  found = []
  for kind, rank in (("images", 3), ("labels", 1)):
    names = [f"{prefix}-{kind}{sep}idx{rank}-ubyte{ext}" for prefix in prefixes for sep in ("-", ".")
             for ext in ("", ".gz")]
    paths = [os.path.join(root, name) for name in names if os.path.isfile(os.path.join(root, name))]
    if not paths:
      raise DataError(f"no IDX {kind} file for split {split!r} in {root} (looked for {', '.join(names[::4])}, "
                      "with or without .gz); use a split that has files (train, test) or add them")
    found.append(paths[0])
  return found[0], found[1]


@functools.lru_cache(maxsize=8)
def _split_arrays(images_path: str, labels_path: str, modified: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
  """(images [N, H, W, C], labels int32 [N]) of one split, read once per process while the files are unchanged."""
  del modified  # part of the cache key only
  images, labels = read_idx(images_path), read_idx(labels_path)
  if images.ndim not in (3, 4):
    raise DataError(f"{images_path} holds an array of shape {images.shape}; IDX images are [N, H, W] or "
                    "[N, H, W, C]")
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise DataError(f"{labels_path} holds {labels.dtype.name} {labels.shape}; IDX labels are integers [N]")
  if len(images) != len(labels):
    raise DataError(f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels; use the "
                    "label file of the same split")
  if len(labels) and labels.min() < 0:
    raise DataError(f"{labels_path} holds the negative label {labels.min()}; class labels are 0, 1, ...")
  images, labels = (images[..., None] if images.ndim == 3 else images), labels.astype(np.int32)
  images.flags.writeable = labels.flags.writeable = False  # shared by every load of the split: never edited
  return images, labels


def class_names(root: str, labels: np.ndarray) -> tuple[str, ...]:
  """The names in `root/classes.txt` (one per line), else "0" .. "K-1" for K = the largest label + 1.

  Raises:
    DataError: a classes.txt with fewer names than the labels need.
  """
  path = os.path.join(root, "classes.txt")
  count = int(labels.max()) + 1 if len(labels) else 0
  names = read_names(path)
  if names is None:
    return tuple(str(i) for i in range(count))
  if len(names) < count:
    raise DataError(f"{path} names {len(names)} classes but the labels go up to {count - 1}; write one name per "
                    "class, in label order")
  return names


def load_idx(root: str, split: str) -> tuple[ArraySource, DatasetSpec]:
  """Opens a split of a directory of IDX files.

  Args:
    root: the directory (e.g. Debian's /usr/share/datasets/fashion-mnist).
    split: "train", "test" (t10k) or another prefix of the files.

  Returns:
    (source, spec): features image [H, W, C] of the stored type and label int32 [].

  Raises:
    DataError: a missing directory or file, a file that is not IDX, or images and labels that do not match.
  """
  require_directory(root, "IDX dataset directory", "point idx:PATH at the folder that holds the IDX files")
  images_path, labels_path = split_paths(root, split)
  modified = (os.path.getmtime(images_path), os.path.getmtime(labels_path))
  images, labels = _split_arrays(images_path, labels_path, modified)
  if not len(labels):
    raise DataError(f"{labels_path} holds no examples; choose a non-empty split")
  names = class_names(root, labels)
  feature_types = {"image": Feature("image", tuple(images.shape[1:]), images.dtype.name),
                   "label": Feature("label", (), "int32", len(names), names)}
  spec = make_spec(f"idx:{root}", split, len(labels), feature_types)
  return ArraySource({"image": images, "label": labels}), spec
