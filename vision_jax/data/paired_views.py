"""Paired views of the embedded MNIST digits for image-to-image tasks: `image` is the input view, `image2` the
target view, `label` the digit.

  * `digit_edges2digit`:     image = the digit's edge map, uint8 [28, 28, 1] 0 or 255: the morphological
                             gradient (3x3 max minus 3x3 min, zero outside the image) >= `EDGE_THRESHOLD`;
                             image2 = the digit [28, 28, 1].
  * `digit_lowres2highres`:  image = the digit at half resolution, uint8 [14, 14, 1], each pixel the mean of a
                             2x2 block rounded half up; image2 = the digit [28, 28, 1].

Each split keeps the embedded MNIST's fixed split (train: digits 0..7999, test: 8000..9999) in file order.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vision_jax.data import embedded_mnist
from vision_jax.data.features import Feature

EDGE_THRESHOLD = 96
CLASS_NAMES = tuple(str(d) for d in range(10))


def _window_extremes(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """3x3 max and min of uint8 [N, H, W] images, with zeros beyond the border."""
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
  h, w = images.shape[1:]
  windows = [padded[:, r:r + h, c:c + w] for r in range(3) for c in range(3)]
  return np.max(windows, 0), np.min(windows, 0)


def edge_maps(digits: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W] edge maps (0 or 255) of uint8 [N, H, W] digits: morphological gradient >= EDGE_THRESHOLD."""
  high, low = _window_extremes(np.asarray(digits))
  return np.where(high.astype(np.int16) - low >= EDGE_THRESHOLD, 255, 0).astype(np.uint8)


def half_resolution(digits: np.ndarray) -> np.ndarray:
  """uint8 [N, H/2, W/2]: means of the 2x2 blocks of uint8 [N, H, W] images (H, W even), rounded half up."""
  n, h, w = digits.shape
  sums = np.asarray(digits, np.int32).reshape(n, h // 2, 2, w // 2, 2).sum((2, 4))
  return ((sums + 2) // 4).astype(np.uint8)


VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"digit_edges2digit": edge_maps,
                                                        "digit_lowres2highres": half_resolution}


def split_arrays(name: str, split: str) -> tuple[dict[str, np.ndarray], dict[str, Feature]]:
  """A split of a paired-view dataset.

  Args:
    name: a key of `VIEWS`.
    split: "train" or "test".

  Returns:
    ({"image": uint8 [N, h, w, 1] input view, "image2": uint8 [N, 28, 28, 1] digit, "label": int32 [N]},
    features, with image2 of kind "image").
  """
  images, labels = embedded_mnist.load_arrays()
  part = slice(0, embedded_mnist.NUM_TRAIN) if split == "train" else slice(embedded_mnist.NUM_TRAIN, None)
  digits = images[part]
  view = VIEWS[name](digits)[..., None]
  arrays = {"image": view, "image2": digits[..., None], "label": labels[part].astype(np.int32)}
  features = {"image": Feature("image", view.shape[1:], "uint8"),
              "image2": Feature("image", digits.shape[1:] + (1,), "uint8"),
              "label": Feature("label", (), "int32", 10, CLASS_NAMES)}
  return arrays, features
