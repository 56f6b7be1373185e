"""Datasets the project generates in memory, loaded by name like any other (`dataset.name` in a config).

  * `synthetic_ecg`:     ECG-like signals float32 [1024, 1], 4 rhythm classes (`synthetic_ecg.py`);
                         train 4,000 / test 1,000.
  * `synthetic_volumes`: noisy volumes uint8 [16, 16, 16, 1], 4 shape classes (`synthetic_volumes.py`);
                         train 4,000 / test 1,000.
  * `mnist_pairs`:       two embedded-MNIST digits per example with a multi-class, a regression and a binary
                         target (`digit_pairs.py`); train 8,000 / test 2,000 pairs from the matching
                         `mnist_embedded` split.

Each split has its own fixed seed, so a split is the same on every run and host. Nothing is downloaded and
`data_dir` is not used; a split takes well under two seconds to make and is kept for the life of the process.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from vision_jax.data import digit_pairs, embedded_mnist, synthetic_ecg, synthetic_volumes
from vision_jax.data.features import DatasetSpec
from vision_jax.data.sources import ArraySource
from vision_jax.errors import DataError

# Split -> (number of examples, seed) of the generated datasets.
_SPLITS = {"train": (4000, 0), "test": (1000, 1)}


def _classes(generate: Callable[[int, int], tuple[np.ndarray, np.ndarray]], input_key: str,
             class_names: tuple[str, ...]):
  """split -> (arrays, input key, class names) for a generator `generate(num_examples, seed)`."""

  def make(split: str):
    data, labels = generate(*_SPLITS[split])
    return {input_key: data, "label": labels}, input_key, class_names

  return make


def _mnist_pairs(split: str):
  images, labels = embedded_mnist.load_arrays()
  part = slice(0, embedded_mnist.NUM_TRAIN) if split == "train" else slice(embedded_mnist.NUM_TRAIN, None)
  _, seed = _SPLITS[split]
  return digit_pairs.make_pairs(images[part], labels[part], seed), "image", tuple(map(str, range(10)))


_GENERATED: dict[str, Callable[[str], tuple[dict[str, np.ndarray], str, tuple[str, ...]]]] = {
    "synthetic_ecg": _classes(synthetic_ecg.generate, "signal", synthetic_ecg.CLASS_NAMES),
    "synthetic_volumes": _classes(synthetic_volumes.generate, "volume", synthetic_volumes.CLASS_NAMES),
    "mnist_pairs": _mnist_pairs,
}
NAMES = tuple(_GENERATED)


@functools.lru_cache(maxsize=None)
def _arrays(name: str, split: str):
  return _GENERATED[name](split)


def load(name: str, split: str) -> tuple[ArraySource, DatasetSpec]:
  """Makes (once per process) and opens a split of a generated dataset.

  Args:
    name: one of `NAMES`.
    split: "train" or "test".

  Returns:
    (source, spec): the main input is `spec.image_key`, the class `label`; every other feature is listed in
    `spec.extra_features` with its per-example shape.

  Raises:
    DataError: an unknown name or split.
  """
  if name not in _GENERATED:
    raise DataError(f"unknown generated dataset {name!r}; generated datasets: {', '.join(NAMES)}")
  if split not in _SPLITS:
    raise DataError(f"generated dataset {name!r} has no split {split!r}; use one of {', '.join(_SPLITS)}")
  arrays, input_key, class_names = _arrays(name, split)
  extra: dict[str, Any] = {k: tuple(v.shape[1:]) for k, v in arrays.items() if k not in (input_key, "label")}
  spec = DatasetSpec(name=name, split=split, num_examples=len(arrays["label"]),
                     image_shape=tuple(arrays[input_key].shape[1:]), num_classes=len(class_names),
                     class_names=tuple(class_names), image_key=input_key, label_key="label",
                     extra_features=extra)
  return ArraySource(arrays), spec
