"""The vendored Fashion-MNIST sample (`third_party/fashion_mnist/`) as the in-memory dataset
`fashion_mnist_embedded`.

The file holds the 10,000 images of the official Fashion-MNIST test set in their original order; the fixed split
is: images 0..7999 are `train`, 8000..9999 are `test` (class counts 776..827 per class in train, 173..224 in
test). Images are uint8 [28, 28, 1], labels int32 0..9 named by the file's `class_names`.
"""

from __future__ import annotations

import importlib.resources

import numpy as np

from vision_jax.data.features import Feature

NUM_TRAIN = 8000
NUM_TEST = 2000


def npz_path() -> str:
  """The path of the vendored `fashion_mnist_10k.npz` (editable and wheel installs)."""
  return str(importlib.resources.files("vision_jax.third_party") / "fashion_mnist" / "fashion_mnist_10k.npz")


def load_arrays() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
  """Returns the vendored (images uint8 [10000, 28, 28], labels uint8 [10000], class names)."""
  with np.load(npz_path(), allow_pickle=False) as data:
    return data["images"], data["labels"], tuple(str(name) for name in data["class_names"])


def split_arrays(split: str) -> tuple[dict[str, np.ndarray], dict[str, Feature]]:
  """One split as arrays and typed features.

  Args:
    split: "train" (images 0..7999) or "test" (8000..9999).

  Returns:
    ({"image": uint8 [N, 28, 28, 1], "label": int32 [N]}, features).
  """
  images, labels, class_names = load_arrays()
  part = slice(0, NUM_TRAIN) if split == "train" else slice(NUM_TRAIN, None)
  arrays = {"image": images[part, :, :, None], "label": labels[part].astype(np.int32)}
  features = {"image": Feature("image", (28, 28, 1), "uint8"),
              "label": Feature("label", (), "int32", len(class_names), class_names)}
  return arrays, features
