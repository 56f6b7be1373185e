"""What every file format shares: a lazy random-access source, seeded splits and one-time notes.

A format parses its metadata (file lists, annotation files) when it is loaded and keeps one small record per
example; `source[i]` decodes that example's files. Problems a run can live with (an unreadable file in an image
folder when not strict, objects dropped past `max_objects`) are counted, and `source.notes()` returns each
one-line note once, for the caller to print:

  source, spec = formats.load("folder", "/data/flowers", "train")
  for line in source.notes():   # e.g. "note: folder:/data/flowers: skipped 3 unreadable files: a.png, ..."
    print(line)
"""

from __future__ import annotations

import os
import threading
from typing import Any, Sequence

import numpy as np

from vision_jax.data.features import DropCounter
from vision_jax.errors import ConfigError, DataError

SPLITS = ("train", "validation", "all")  # splits made by `split_indices`
_LISTED_FILES = 5  # skipped files named in a note


def error_summary(error: BaseException) -> str:
  """`TypeName: first line of the message`, for wrapping a library error in a one-line `DataError`."""
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class SkipReport:
  """Files left out of a dataset because they could not be read; reported once (thread-safe)."""

  def __init__(self):
    self._lock = threading.Lock()
    self.paths: list[str] = []
    self.reported = False

  def add(self, path: str) -> None:
    """Records one skipped file."""
    with self._lock:
      self.paths.append(path)

  def message(self) -> str | None:
    """"skipped N unreadable files: a.png, b.png, ..." the first time there are any; None otherwise."""
    with self._lock:
      if self.reported or not self.paths:
        return None
      self.reported = True
      named = ", ".join(self.paths[:_LISTED_FILES])
      more = f" and {len(self.paths) - _LISTED_FILES} more" if len(self.paths) > _LISTED_FILES else ""
      noun = "file" if len(self.paths) == 1 else "files"
      return f"skipped {len(self.paths)} unreadable {noun}: {named}{more} (strict mode makes this an error)"


class FileSource:
  """A random-access source over per-example records whose files are decoded on access.

  `len(source)`, `source[i]` -> {feature key: NumPy array} and `source.__getitems__(indices)`, as grain reads
  them. Subclasses set `records` and implement `_read(record)`.

  Attributes:
    name: the dataset name used in notes, e.g. "coco:/data/instances_val.json".
    records: one entry per example, in order.
    max_objects: rows of the padded object features (0 for formats without objects).
    drops: counts objects dropped by padding (`features.pad_objects`).
    skipped: files left out at load time.
  """

  def __init__(self, name: str, records: Sequence[Any], max_objects: int = 0):
    self.name = name
    self.records = list(records)
    self.max_objects = max_objects
    self.drops = DropCounter()
    self.skipped = SkipReport()

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return self._read(self.records[int(index)])

  def __getitems__(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
    return [self[i] for i in indices]

  def _read(self, record: Any) -> dict[str, np.ndarray]:
    raise NotImplementedError

  def notes(self) -> list[str]:
    """One-line notes not yet returned: skipped files (known after loading), dropped objects (known once
    examples with more than `max_objects` objects have been read). Each note is returned once."""
    lines = [self.skipped.message(), self.drops.report(self.name, self.max_objects)]
    return [line if line.startswith("note:") else f"note: {self.name}: {line}" for line in lines if line]


def require_directory(path: str, what: str, fix: str) -> None:
  """Raises a one-line `DataError` when `path` is not a directory; `fix` says what the user should do."""
  if not os.path.isdir(path):
    raise DataError(f"{what} {path} does not exist or is not a directory; {fix}")


def read_names(path: str) -> tuple[str, ...] | None:
  """Names in a text file, one per non-empty line (None when the file does not exist)."""
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    return tuple(line.strip() for line in f if line.strip())


def split_indices(count: int, split: str, validation_fraction: float, seed: int, where: str) -> np.ndarray:
  """The examples of a seeded train/validation split of `count` examples, in their original order.

  A seeded permutation of range(count) is cut: its first round(count * validation_fraction) entries are the
  validation split, the rest the train split; "all" is every example.

  Args:
    count: examples in the dataset.
    split: "train", "validation" or "all".
    validation_fraction: fraction held out for validation, in [0, 1).
    seed: seed of the permutation (the same seed gives complementary train and validation splits).
    where: the dataset, for error messages.

  Returns:
    int64 [N] sorted indices into range(count).

  Raises:
    ConfigError: an unknown split or a fraction outside [0, 1).
    DataError: the requested split would be empty.
  """
  if split not in SPLITS:
    raise ConfigError(f"{where} has no split {split!r}; use one of {', '.join(SPLITS)}")
  if not 0 <= validation_fraction < 1:
    raise ConfigError(f"validation_fraction {validation_fraction} is outside [0, 1); choose e.g. 0.2")
  if split == "all":
    return np.arange(count)
  order = np.random.default_rng(seed).permutation(count)
  held_out = int(round(count * validation_fraction))
  chosen = np.sort(order[:held_out] if split == "validation" else order[held_out:])
  if not len(chosen):
    raise DataError(f"{where} split {split!r} is empty ({count} examples, validation_fraction "
                    f"{validation_fraction}); change validation_fraction or add examples")
  return chosen
