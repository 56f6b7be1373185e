"""Image folders: classes, labels, seeded splits, channels, sizes, skipped files and errors."""

import os

import numpy as np
import pytest
from PIL import Image

from tests.data.formats import writers
from tests.data.formats.expect import one_line_error
from vision_jax.data import formats
from vision_jax.errors import ConfigError

# class -> file names; written out of order so that sorting is tested.
FILES = {"tulip": ["t1.png", "t0.jpg"], "daisy": ["d0.png", "d1.bmp", "sub/d2.png"], "rose": ["r0.gif"]}


def _write_folder(root, size=(8, 6)):
  pixels = {}
  for n, (class_name, names) in enumerate(sorted(FILES.items())):
    for k, name in enumerate(names):
      image = writers.random_image(*size, seed=10 * n + k)
      if name.endswith(".gif"):
        image = np.repeat(image[..., :1], 3, -1)  # GIF stores a palette; gray fits it exactly
      writers.write_image(os.path.join(root, class_name, name), image)
      pixels[os.path.join(root, class_name, name)] = image
  return pixels



def test_all_split_reads_sorted_classes_and_labels(tmp_path):
  pixels = _write_folder(str(tmp_path))
  source, spec = formats.load("folder", str(tmp_path), "all")
  assert spec.class_names == ("daisy", "rose", "tulip") and spec.num_classes == 3
  assert spec.image_shape == (6, 8, 3) and spec.num_examples == 6 == len(source)
  want = sorted((p, ("daisy", "rose", "tulip").index(os.path.basename(os.path.dirname(p).replace("/sub", ""))))
                for p in pixels)
  examples = source.__getitems__(list(range(len(source))))
  for (path, label), example in zip(want, examples):
    assert example["label"] == label and example["label"].dtype == np.int32
    if path.endswith(".jpg"):  # lossy: what PIL decodes
      np.testing.assert_array_equal(example["image"], np.asarray(Image.open(path).convert("RGB")))
    else:
      np.testing.assert_array_equal(example["image"], pixels[path])


def test_train_and_validation_are_a_seeded_partition(tmp_path):
  _write_folder(str(tmp_path))
  labels_of = lambda split, seed: [(int(e["label"]), e["image"].tobytes()) for e in formats.load(
      "folder", str(tmp_path), split, validation_fraction=0.34, seed=seed)[0]]
  train, validation = labels_of("train", 3), labels_of("validation", 3)
  assert len(validation) == 2 and len(train) == 4  # round(6 * 0.34)
  assert sorted(train + validation) == sorted(labels_of("all", 0))
  assert labels_of("validation", 3) == validation  # same seed, same split


def test_one_channel_and_varying_sizes(tmp_path):
  _write_folder(str(tmp_path))
  writers.write_image(str(tmp_path / "rose" / "big.png"), writers.random_image(9, 9))
  source, spec = formats.load("folder", str(tmp_path), "all", channels=1)
  assert spec.image_shape == (0, 0, 1)
  assert {source[i]["image"].shape for i in range(len(source))} == {(6, 8, 1), (9, 9, 1)}


def test_unreadable_files_are_skipped_with_one_note(tmp_path):
  _write_folder(str(tmp_path))
  for name in ("daisy/bad.png", "rose/bad.jpg"):
    (tmp_path / name).write_bytes(b"garbage")
  source, spec = formats.load("folder", str(tmp_path), "all")
  assert spec.num_examples == 6
  notes = source.notes()
  assert notes == [f"note: folder:{tmp_path}: skipped 2 unreadable files: daisy/bad.png, rose/bad.jpg "
                   "(strict mode makes this an error)"]
  assert source.notes() == []  # once


def test_unreadable_file_in_strict_mode_raises_one_line(tmp_path):
  _write_folder(str(tmp_path))
  (tmp_path / "daisy" / "bad.png").write_bytes(b"garbage")
  with one_line_error("bad.png"):
    formats.load("folder", str(tmp_path), "all", strict=True)


def test_empty_class_folder_raises_one_line(tmp_path):
  _write_folder(str(tmp_path))
  os.makedirs(tmp_path / "empty")
  with one_line_error(r"class folder .*empty has no image files"):
    formats.load("folder", str(tmp_path), "all")


def test_class_folder_of_unreadable_files_raises_one_line(tmp_path):
  _write_folder(str(tmp_path))
  os.makedirs(tmp_path / "zinnia")
  (tmp_path / "zinnia" / "z.png").write_bytes(b"garbage")
  with one_line_error("zinnia has no readable images"):
    formats.load("folder", str(tmp_path), "all")


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "does not exist"),
    (lambda root: os.makedirs(root), "has no class subfolders"),
])
def test_missing_root_or_classes_raise_one_line(tmp_path, make, message):
  make(str(tmp_path / "data"))
  with one_line_error(message):
    formats.load("folder", str(tmp_path / "data"), "train")


def test_bad_split_fraction_channels_and_kind(tmp_path):
  _write_folder(str(tmp_path))
  for kwargs, message in (({"split": "test"}, "no split 'test'"), ({"validation_fraction": 1.0}, r"\[0, 1\)"),
                          ({"channels": 4}, "channels 4"), ({"kind": "tfrecord"}, "unknown dataset format")):
    args = {"kind": "folder", "path": str(tmp_path), "split": "train", **kwargs}
    with one_line_error(message, ConfigError):
      formats.load(**args)
  with one_line_error("split 'validation' is empty"):
    formats.load("folder", str(tmp_path), "validation", validation_fraction=0.0)
