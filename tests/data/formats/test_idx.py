"""MNIST's IDX files: headers written byte by byte here after LeCun's description of the format (magic 0x00000803
for images, 0x00000801 for labels, big-endian sizes and data), gzipped or not, read back through `idx:PATH`."""

import gzip
import os
import struct

import numpy as np
import pytest

from tests.data.formats.expect import one_line_error
from vision_jax.data import datasets, fashion_mnist, formats
from vision_jax.data.formats import idx


def _images_bytes(images: np.ndarray) -> bytes:
  n, h, w = images.shape
  return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def _labels_bytes(labels: np.ndarray) -> bytes:
  return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def _write(path, data: bytes, gz: bool) -> None:
  with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
    f.write(data)


def test_headers_and_types_as_the_format_describes(tmp_path):
  path = tmp_path / "labels"
  path.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 255]))
  np.testing.assert_array_equal(idx.read_idx(str(path)), [7, 8, 255])
  assert idx.read_idx(str(path)).dtype == np.uint8
  path.write_bytes(bytes([0, 0, 0x0B, 2, 0, 0, 0, 1, 0, 0, 0, 2]) + b"\x01\x02\xff\xfe")  # int16, big-endian
  np.testing.assert_array_equal(idx.read_idx(str(path)), [[258, -2]])
  path.write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + struct.pack(">f", -1.5))
  assert idx.read_idx(str(path)).tolist() == [-1.5]


def test_the_vendored_t10k_written_as_idx_reads_back_as_fashion_mnist(tmp_path):
  images, labels, _ = fashion_mnist.load_arrays()
  _write(tmp_path / "train-images-idx3-ubyte.gz", _images_bytes(images[:300]), gz=True)
  _write(tmp_path / "train-labels-idx1-ubyte.gz", _labels_bytes(labels[:300]), gz=True)
  _write(tmp_path / "t10k-images-idx3-ubyte", _images_bytes(images[300:500]), gz=False)
  _write(tmp_path / "t10k-labels-idx1-ubyte", _labels_bytes(labels[300:500]), gz=False)
  train, spec = datasets.load(f"idx:{tmp_path}", "train")
  test, test_spec = formats.load("idx", str(tmp_path), "test", channels=3)  # stored channels are kept
  assert (len(train), len(test)) == (300, 200) and spec.num_examples == 300
  assert spec.image_shape == test_spec.image_shape == (28, 28, 1) and spec.features["image"].dtype == "uint8"
  np.testing.assert_array_equal(train[17]["image"][..., 0], images[17])
  assert train[17]["label"] == labels[17] and train[17]["label"].dtype == np.int32
  np.testing.assert_array_equal(test.take(np.arange(200))["image"][..., 0], images[300:500])
  assert spec.class_names == tuple(str(c) for c in range(labels[:300].max() + 1))


def test_classes_txt_names_the_classes_and_the_dotted_variant_is_found(tmp_path):
  _write(tmp_path / "train-images.idx3-ubyte", _images_bytes(np.zeros((2, 3, 4))), gz=False)
  _write(tmp_path / "train-labels.idx1-ubyte", _labels_bytes(np.array([0, 2])), gz=False)
  (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n")
  source, spec = datasets.load(f"idx:{tmp_path}", "train")
  assert spec.class_names == ("cat", "dog", "bird") and spec.image_shape == (3, 4, 1)
  (tmp_path / "classes.txt").write_text("cat\ndog\n")  # read on every load, outside the split-array cache
  with one_line_error("classes.txt names 2 classes but the labels go up to 2"):
    datasets.load(f"idx:{tmp_path}", "train")


@pytest.mark.parametrize("case,match", [
    ("no_dir", "IDX dataset directory .* does not exist"),
    ("no_split", "no IDX images file for split 'val' .*looked for val-images-idx3-ubyte"),
    ("not_idx", "is not an IDX file .*first bytes 89504e47"),
    ("truncated", r"header says shape \(5, 28, 28\) .* truncated"),
    ("count", "holds 5 images but .* 4 labels"),
    ("bad_gzip", "cannot read IDX file .*train-images-idx3-ubyte.gz: .*re-download"),
])
def test_bad_files_are_one_line_errors(tmp_path, case, match):
  root = tmp_path / "data"
  os.makedirs(root)
  images, labels = np.zeros((5, 28, 28)), np.arange(5)
  if case == "not_idx":
    _write(root / "train-images-idx3-ubyte", b"\x89PNG\r\n\x1a\n" + bytes(40), gz=False)
  elif case == "bad_gzip":  # a gzip header over a damaged body
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_images_bytes(images))[:12] + bytes(50))
  elif case == "truncated":
    _write(root / "train-images-idx3-ubyte.gz", _images_bytes(images)[:-10], gz=True)
  else:
    _write(root / "train-images-idx3-ubyte", _images_bytes(images), gz=False)
  _write(root / "train-labels-idx1-ubyte", _labels_bytes(labels[:4] if case == "count" else labels), gz=False)
  name = {"no_dir": f"idx:{tmp_path}/missing"}.get(case, f"idx:{root}")
  with one_line_error(match):
    datasets.load(name, "val" if case == "no_split" else "train")


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debians_fashion_mnist_test_set_is_the_vendored_file():
  test, spec = datasets.load("idx:/usr/share/datasets/fashion-mnist", "test")
  images, labels, _ = fashion_mnist.load_arrays()
  np.testing.assert_array_equal(test.arrays["image"][..., 0], images)
  np.testing.assert_array_equal(test.arrays["label"], labels)
  assert datasets.load("idx:/usr/share/datasets/fashion-mnist", "train")[1].num_examples == 60000


def test_the_fashion_recipe_reads_idx_files_with_its_classes_held_out(tmp_path):
  """`--config.dataset.name=idx:DIR` on the Fashion-MNIST recipe (README): training sees classes 0-4 of the IDX
  train files only, evaluation classes 5-9 of the t10k files, relabelled 0-4, with the vendored images."""
  from tests.tasks import in_process  # pylint: disable=import-outside-toplevel
  from vision_jax.train_lib import setup  # pylint: disable=import-outside-toplevel
  images, labels, _ = fashion_mnist.load_arrays()
  root = tmp_path / "fashion"
  os.makedirs(root)
  _write(root / "train-images-idx3-ubyte.gz", _images_bytes(images[:600]), gz=True)
  _write(root / "train-labels-idx1-ubyte.gz", _labels_bytes(labels[:600]), gz=True)
  _write(root / "t10k-images-idx3-ubyte.gz", _images_bytes(images[600:900]), gz=True)
  _write(root / "t10k-labels-idx1-ubyte.gz", _labels_bytes(labels[600:900]), gz=True)
  config = in_process.load_config("configs/siamese_digits.py:loss=semi_hard,dataset=fashion,smoke",
                                  str(tmp_path / "tfds"), dataset__name=f"idx:{root}")
  s = setup.setup(config, str(tmp_path / "run"))
  held_out = np.flatnonzero(labels[600:900] >= 5)
  assert s.train_spec.num_examples == np.sum(labels[:600] < 5) and s.eval_spec.num_examples == len(held_out)
  assert s.train_spec.num_classes == s.eval_spec.num_classes == 5
  evaluated = [s.eval_source[i] for i in range(len(s.eval_source))]
  np.testing.assert_array_equal([e["label"] for e in evaluated], labels[600:900][held_out] - 5)
  np.testing.assert_array_equal(evaluated[3]["image"][..., 0], images[600 + held_out[3]])
  trained = {int(s.train_source[i]["label"]) for i in range(len(s.train_source))}
  assert trained == {0, 1, 2, 3, 4}
