"""The embedded MNIST sample: fixed 8,000/2,000 split with exactly the vendored digits."""

import hashlib

import numpy as np
import pytest

from vision_jax.data import datasets, embedded_mnist
from vision_jax.errors import DataError

VENDORED_CLASS_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]  # third_party/mnist/README.md


def _digests(images):
  return sorted(hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images)


def test_vendored_file_matches_its_readme():
  images, labels = embedded_mnist.load_arrays()
  assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
  assert np.bincount(labels, minlength=10).tolist() == VENDORED_CLASS_COUNTS


@pytest.mark.parametrize("split,lo,hi", [("train", 0, 8000), ("test", 8000, 10000)])
def test_split_holds_exactly_its_slice(data_dir, split, lo, hi):
  source, spec = datasets.load("mnist_embedded", split, data_dir)
  assert spec.num_examples == hi - lo and spec.image_shape == (28, 28, 1) and spec.num_classes == 10
  records = source.__getitems__(list(range(len(source))))
  got_images = np.stack([r["image"][:, :, 0] for r in records])
  got_labels = np.asarray([r["label"] for r in records])
  images, labels = embedded_mnist.load_arrays()
  assert _digests(got_images) == _digests(images[lo:hi])
  assert np.bincount(got_labels, minlength=10).tolist() == np.bincount(labels[lo:hi], minlength=10).tolist()


def test_unknown_and_unprepared_datasets_are_clear_errors(tmp_path):
  with pytest.raises(DataError, match="unknown dataset 'no_such_set'"):
    datasets.load("no_such_set", "train", str(tmp_path))
  with pytest.raises(DataError, match="not prepared.*tfds build mnist --file_format=array_record"):
    datasets.load("mnist", "train", str(tmp_path))


def test_unknown_split_is_a_clear_error(data_dir):
  with pytest.raises(DataError, match="no split 'validation'"):
    datasets.load("mnist_embedded", "validation", data_dir)
