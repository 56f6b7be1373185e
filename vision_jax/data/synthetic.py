"""Datasets the project generates in memory (or holds vendored), loaded by name like any other (`dataset.name`
in a config).

  * `synthetic_ecg`:          ECG-like signals float32 [1024, 1], 4 rhythm classes (`synthetic_ecg.py`);
                              train 4,000 / test 1,000.
  * `synthetic_volumes`:      noisy volumes uint8 [16, 16, 16, 1], 4 shape classes (`synthetic_volumes.py`);
                              train 4,000 / test 1,000.
  * `mnist_pairs`:            two embedded-MNIST digits per example with a multi-class, a regression and a binary
                              target (`digit_pairs.py`); train 8,000 / test 2,000 pairs from the matching
                              `mnist_embedded` split.
  * `digit_scenes`:           96x96 canvases with 1..6 digits: boxes, instance masks, an 11-class semantic mask
                              (`digit_scenes.py`); train 8,000 / test 2,000 scenes; no whole-image label.
  * `digit_localization`:     one digit on a warped card, 64x64: label, the digit's box, the card's 4 corners as
                              keypoints (`digit_localization.py`); train 8,000 / test 2,000.
  * `fashion_mnist_embedded`: the vendored Fashion-MNIST 10k, 28x28x1, 10 classes (`fashion_mnist.py`);
                              train 8,000 / test 2,000.
  * `digit_edges2digit`, `digit_lowres2highres`: paired views (`paired_views.py`), `image` -> `image2`;
                              train 8,000 / test 2,000.

Every dataset built from the embedded digits keeps its fixed split: train examples use only digits
0..7999, test examples only digits 8000..9999. Each split has its own fixed seed, so a split is the same on every
run and host. Nothing is downloaded and `data_dir` is not used; a split takes at most a few seconds to make and is
kept for the life of the process. Every spec carries typed features (`features.Feature`).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Sequence

import numpy as np

from vision_jax.data import (digit_localization, digit_pairs, digit_scenes, embedded_mnist, fashion_mnist,
                             paired_views, synthetic_ecg, synthetic_volumes)
from vision_jax.data.features import DatasetSpec, Feature, make_spec
from vision_jax.data.sources import ArraySource
from vision_jax.errors import DataError

# Split -> (number of examples, seed) of the generated datasets.
_SPLITS = {"train": (4000, 0), "test": (1000, 1)}


class Generated(NamedTuple):
  """A split of a generated dataset: its source, typed features and the key of its main input."""

  source: Sequence[dict[str, np.ndarray]]
  features: dict[str, Feature]
  image_key: str = "image"


def _classes(generate: Callable[[int, int], tuple[np.ndarray, np.ndarray]], input_key: str,
             input_dtype: str, class_names: tuple[str, ...]) -> Callable[[str], Generated]:
  """split -> `Generated` for a classification generator `generate(num_examples, seed)`."""

  def make(split: str) -> Generated:
    data, labels = generate(*_SPLITS[split])
    features = {input_key: Feature("image", tuple(data.shape[1:]), input_dtype),
                "label": Feature("label", (), "int32", len(class_names), class_names)}
    return Generated(ArraySource({input_key: data, "label": labels}), features, input_key)

  return make


def _mnist_pairs(split: str) -> Generated:
  images, labels = embedded_mnist.load_arrays()
  part = slice(0, embedded_mnist.NUM_TRAIN) if split == "train" else slice(embedded_mnist.NUM_TRAIN, None)
  _, seed = _SPLITS[split]
  names = tuple(map(str, range(10)))
  features = {"image": Feature("image", (28, 28, 1), "uint8"), "label": Feature("label", (), "int32", 10, names),
              "image2": Feature("image", (28, 28, 1), "uint8"), "label2": Feature("label", (), "int32", 10, names),
              "digit_sum": Feature("value", (), "float32"), "same": Feature("value", (), "int32")}
  return Generated(ArraySource(digit_pairs.make_pairs(images[part], labels[part], seed)), features)


def _arrays(make: Callable[[str], tuple[dict[str, np.ndarray], dict[str, Feature]]]) -> Callable[[str], Generated]:
  """split -> `Generated` for a maker of (arrays, features) with the main input under "image"."""

  def generated(split: str) -> Generated:
    arrays, features = make(split)
    return Generated(ArraySource(arrays), features)

  return generated


_GENERATED: dict[str, Callable[[str], Generated]] = {
    "synthetic_ecg": _classes(synthetic_ecg.generate, "signal", "float32", synthetic_ecg.CLASS_NAMES),
    "synthetic_volumes": _classes(synthetic_volumes.generate, "volume", "uint8", synthetic_volumes.CLASS_NAMES),
    "mnist_pairs": _mnist_pairs,
    "digit_scenes": lambda split: Generated(*digit_scenes.split_source(split)),
    "digit_localization": _arrays(digit_localization.split_arrays),
    "fashion_mnist_embedded": _arrays(fashion_mnist.split_arrays),
    **{name: _arrays(functools.partial(paired_views.split_arrays, name)) for name in paired_views.VIEWS},
}
NAMES = tuple(_GENERATED)


@functools.lru_cache(maxsize=None)
def _split(name: str, split: str) -> Generated:
  return _GENERATED[name](split)


def load(name: str, split: str) -> tuple[Sequence[dict[str, np.ndarray]], DatasetSpec]:
  """Makes (once per process) and opens a split of a generated dataset.

  Args:
    name: one of `NAMES`.
    split: "train" or "test".

  Returns:
    (source, spec): the main input is `spec.image_key`, the class `label` (absent from `digit_scenes`:
    `spec.label_key` is ""); every feature is typed in `spec.features` and every other one than the image and
    the label is listed in `spec.extra_features` with its per-example shape.

  Raises:
    DataError: an unknown name or split.
  """
  if name not in _GENERATED:
    raise DataError(f"unknown generated dataset {name!r}; generated datasets: {', '.join(NAMES)}")
  if split not in _SPLITS:
    raise DataError(f"generated dataset {name!r} has no split {split!r}; use one of {', '.join(_SPLITS)}")
  generated = _split(name, split)
  spec = make_spec(name, split, len(generated.source), generated.features, image_key=generated.image_key)
  return generated.source, spec
