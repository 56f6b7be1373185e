"""fashion_mnist_embedded: the vendored file, read here with NumPy, split 8,000 / 2,000 in file order with its
class names; the class counts are those the vendored README states."""

import os

import numpy as np

from vision_jax.data import datasets, fashion_mnist

NAMES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def test_splits_are_the_vendored_file_in_order():
  path = os.path.join(os.path.dirname(__file__), "..", "..", "third_party", "fashion_mnist", "fashion_mnist_10k.npz")
  assert os.path.samefile(fashion_mnist.npz_path(), path)  # shipped as package data of vision_jax.third_party
  with np.load(path, allow_pickle=False) as data:
    images, labels = data["images"], data["labels"]
  train, train_spec = datasets.load("fashion_mnist_embedded", "train")
  test, spec = datasets.load("fashion_mnist_embedded", "test")
  assert (len(train), len(test)) == (8000, 2000)
  np.testing.assert_array_equal(train.arrays["image"][..., 0], images[:8000])
  np.testing.assert_array_equal(test.arrays["image"][..., 0], images[8000:])
  np.testing.assert_array_equal(test.arrays["label"], labels[8000:])
  assert train.arrays["label"].dtype == np.int32
  assert np.bincount(train.arrays["label"]).tolist() == [786, 776, 825, 827, 810, 807, 790, 792, 790, 797]
  assert np.bincount(test.arrays["label"]).tolist() == [214, 224, 175, 173, 190, 193, 210, 208, 210, 203]
  assert spec.class_names == train_spec.class_names == NAMES and spec.num_classes == 10
  assert spec.image_shape == (28, 28, 1) and spec.features["image"].dtype == "uint8"
  record = test[17]
  np.testing.assert_array_equal(record["image"][..., 0], images[8017])
  assert record["label"] == labels[8017]
