"""YOLO txt datasets: normalised boxes to pixels, split folders, background images and errors."""

import numpy as np
import pytest

from tests.data.formats import writers
from tests.data.formats.expect import one_line_error
from vision_jax.data import formats



def _write(root, label_text, size=(30, 20), folder=""):
  writers.write_image(f"{root}/images/{folder}x.png", writers.random_image(*size))
  writers.write_text(f"{root}/labels/{folder}x.txt", label_text)
  writers.write_text(f"{root}/classes.txt", "cat\ndog\n")


def test_fractions_of_any_size_convert_within_float_rounding(tmp_path):
  _write(str(tmp_path), "1 0.5 0.25 0.2 0.3\n\n0 0.1 0.9 0.2 0.2\n")  # 30 x 20 pixels: not exact in binary
  source, spec = formats.load("yolo", str(tmp_path), "all", max_objects=3)
  assert spec.features["box_labels"].class_names == ("cat", "dog") and spec.image_shape == (20, 30, 3)
  example = source[0]
  want = [[15 - 3, 5 - 3, 15 + 3, 5 + 3], [3 - 3, 18 - 2, 3 + 3, 18 + 2], [0, 0, 0, 0]]  # by hand
  np.testing.assert_allclose(example["boxes"], want, atol=1e-5)
  np.testing.assert_array_equal(example["box_labels"], [1, 0, -1])


def test_split_folders_and_background_images(tmp_path):
  _write(str(tmp_path), "0 0.5 0.5 1 1\n", folder="train/")
  writers.write_image(str(tmp_path / "images" / "val" / "y.png"), writers.random_image(8, 8))  # no label file
  train, _ = formats.load("yolo", str(tmp_path), "train")
  validation, spec = formats.load("yolo", str(tmp_path), "validation")
  assert len(train) == 1 and len(validation) == 1 and spec.image_shape == (8, 8, 3)
  np.testing.assert_array_equal(train[0]["boxes"][0], [0, 0, 30, 20])
  assert validation[0]["num_objects"] == 0


@pytest.mark.parametrize("text, message", [
    ("0 0.5 0.5 0.2\n", "line 1 is '0 0.5 0.5 0.2', not 'class cx cy w h'"),
    ("0 0.5 0.5 0.2 0.2\nzero 0.5 0.5 0.2 0.2\n", "line 2 is 'zero 0.5 0.5 0.2 0.2'"),
    ("0 0.5 0.5 0.2 0.2 0.1 0.1\n", "line 1 .*not 'class cx cy w h'"),
    ("2 0.5 0.5 0.2 0.2\n", "line 1 has class 2, outside 0..1"),
    ("0 0.5 0.5 -0.2 0.2\n", "negative width or height"),
    ("0 0.9 0.5 0.4 0.2\n", "outside the 30x20 image"),
])
def test_malformed_label_lines_raise_one_line(tmp_path, text, message):
  _write(str(tmp_path), text)
  with one_line_error(message) as raised:
    formats.load("yolo", str(tmp_path), "all")
  assert "x.txt" in str(raised.value)


def test_missing_names_and_folders_raise_one_line(tmp_path):
  _write(str(tmp_path), "")
  (tmp_path / "classes.txt").unlink()
  with one_line_error("has no class names; write .*classes.txt"):
    formats.load("yolo", str(tmp_path), "all")
  with one_line_error("elsewhere/images does not exist"):
    formats.load("yolo", str(tmp_path / "elsewhere"), "all")


def test_unreadable_image_is_skipped_or_an_error_when_strict(tmp_path):
  _write(str(tmp_path), "0 0.5 0.5 1 1\n")
  (tmp_path / "images" / "broken.jpg").write_bytes(b"garbage")
  source, _ = formats.load("yolo", str(tmp_path), "all")
  assert len(source) == 1
  assert source.notes() == [f"note: yolo:{tmp_path}: skipped 1 unreadable file: images/broken.jpg (strict mode "
                            "makes this an error)"]
  with one_line_error("cannot read image .*broken.jpg"):
    formats.load("yolo", str(tmp_path), "all", strict=True)
