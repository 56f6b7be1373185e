"""Class and few-shot subsets of a dataset split, chosen by config (for transfer learning experiments).

`dataset.classes = "5,6,7,8,9"` keeps only those classes and renumbers their labels 0..4 in the order given
(class names follow); `dataset.examples_per_class = 50` then keeps 50 examples of each kept class from the
training split, drawn by `dataset.subset_seed` (the same examples whatever the training seed). Evaluation
splits keep every example of the kept classes. `dataset.eval_classes = "5,6,7,8,9"` gives the evaluation split
its own classes (renumbered 0..4 in the order given), e.g. classes held out of training for metric learning,
while the training split keeps `dataset.classes`.

Classes are listed ("5,6,7") or sliced like TFDS splits (":80%" the first 80% of the classes, "80%:" the rest,
"10:20" classes 10 to 19). A dataset without labels but with an identity feature (LFW's person) is subset by the
identity, so `dataset.classes=":80%"` and `dataset.eval_classes="80%:"` hold people out of training.

Finding the examples of a class reads every label of the split once (it decodes the records), which takes a
fraction of a second for the digits and scales with the split's size.

Example:
  >>> source, spec = datasets.load("mnist_embedded", "train")  # doctest: +SKIP
  >>> source, spec = select(source, spec, classes=(5, 6, 7, 8, 9), examples_per_class=50)  # doctest: +SKIP
  >>> spec.num_examples, spec.class_names  # doctest: +SKIP
  (250, ('5', '6', '7', '8', '9'))
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence

import ml_collections
import numpy as np

from vision_jax.data.features import DatasetSpec, typed_features
from vision_jax.data.samplers import grouping_key
from vision_jax.errors import ConfigError, DataError

_READ_CHUNK = 1024
_SLICE = re.compile(r"^(\d+%?)?:(\d+%?)?$")


class SubsetSource:
  """A random-access source of chosen examples of another source, with labels renumbered.

  Args:
    source: the underlying source (`source[i]` -> dict of arrays).
    indices: int [M], positions in `source` that make up this subset, in order.
    label_map: int [K_old], new label of each old label (-1 for classes not kept).
    label_key: feature key of the label.
  """

  def __init__(self, source: Sequence[Any], indices: np.ndarray, label_map: np.ndarray, label_key: str):
    self.source, self.indices, self.label_map, self.label_key = source, indices, label_map, label_key

  def __len__(self) -> int:
    return len(self.indices)

  def _relabel(self, record: dict[str, Any]) -> dict[str, Any]:
    return {**record, self.label_key: self.label_map[int(record[self.label_key])]}

  def __getitem__(self, i: int) -> dict[str, Any]:
    return self._relabel(self.source[int(self.indices[i])])

  def __getitems__(self, positions: Sequence[int]) -> list[dict[str, Any]]:
    wanted = [int(self.indices[p]) for p in positions]
    getitems = getattr(self.source, "__getitems__", None)
    records = getitems(wanted) if getitems else [self.source[i] for i in wanted]
    return [self._relabel(r) for r in records]


def _slice_bound(text: str, num_classes: int, default: int, key: str) -> int:
  if not text:
    return default
  if text.endswith("%"):
    percent = int(text[:-1])
    if percent > 100:
      raise ConfigError(f"{key}: {text} is over 100%; use a percentage in 0%..100%")
    return num_classes * percent // 100
  return min(int(text), num_classes)


def parse_classes(text: str, num_classes: int, key: str = "dataset.classes") -> tuple[int, ...]:
  """"5,6,7" -> (5, 6, 7), checked against the dataset's `num_classes`; a TFDS-like slice ("10:20", ":80%",
  "80%:"; a percentage p% is class num_classes * p // 100) -> its range; "" -> every class. `key` names the
  setting in errors."""
  compact = text.replace(" ", "")
  if not compact:
    return tuple(range(num_classes))
  sliced = _SLICE.match(compact)
  if sliced:
    start = _slice_bound(sliced.group(1) or "", num_classes, 0, key)
    stop = _slice_bound(sliced.group(2) or "", num_classes, num_classes, key)
    if start >= stop:
      raise ConfigError(f"{key}={text!r} selects none of the {num_classes} classes; give a slice start:stop with "
                        "start < stop (e.g. ':80%' and '80%:')")
    return tuple(range(start, stop))
  try:
    classes = tuple(int(c) for c in compact.split(","))
  except ValueError:
    raise ConfigError(f"{key}={text!r} is not a comma list of class indices or a slice; use e.g. '5,6,7' or "
                      "':80%'") from None
  bad = [c for c in classes if not 0 <= c < num_classes]
  if bad or len(set(classes)) != len(classes):
    raise ConfigError(f"{key}={text!r} must list distinct class indices in 0..{num_classes - 1}")
  return classes


def group_classes(spec: DatasetSpec) -> tuple[str, int, tuple[str, ...]]:
  """(key, number of classes, class names) of what subsets choose from: the class label, else the identity
  (`samplers.grouping_key`).

  Raises:
    DataError: the split has neither.
  """
  key = grouping_key(spec)
  if not key:
    raise DataError(f"{spec.name}:{spec.split} has no class labels or identities to choose from; leave "
                    "dataset.classes and dataset.eval_classes empty")
  if key == spec.label_key:
    return key, spec.num_classes, tuple(spec.class_names)
  feature = typed_features(spec)[key]
  return key, feature.num_classes, tuple(feature.class_names)


def read_labels(source: Sequence[Any], label_key: str) -> np.ndarray:
  """Every label of `source`, int64 [N], read in chunks."""
  getitems = getattr(source, "__getitems__", None)
  labels = []
  for start in range(0, len(source), _READ_CHUNK):
    positions = list(range(start, min(start + _READ_CHUNK, len(source))))
    records = getitems(positions) if getitems else [source[i] for i in positions]
    labels.extend(int(r[label_key]) for r in records)
  return np.asarray(labels, np.int64)


def select(source: Sequence[Any], spec: DatasetSpec, classes: Sequence[int],
           examples_per_class: int = 0, seed: int = 0) -> tuple[SubsetSource, DatasetSpec]:
  """Keeps the examples of `classes` (labels renumbered 0..len(classes)-1), at most `examples_per_class` each.
  Classes are those of the label, else of the identity (`group_classes`).

  Args:
    source: random-access source of one split.
    spec: its `DatasetSpec`.
    classes: old class indices to keep; new label i is old class classes[i].
    examples_per_class: > 0 keeps exactly that many examples of every class (drawn without replacement by
      `seed`); 0 keeps all.
    seed: the draw's seed; class c uses the permutation of (seed, c), so the choice of one class does not
      depend on the others.

  Returns:
    (source, spec) of the subset; examples keep their order in the split.

  Raises:
    DataError: a kept class has fewer than `examples_per_class` examples (or none).
  """
  key, num_classes, class_names = group_classes(spec)
  labels = read_labels(source, key)
  label_map = np.full(max(num_classes, int(labels.max()) + 1), -1, np.int64)
  label_map[list(classes)] = np.arange(len(classes))
  chosen = []
  for c in classes:
    members = np.flatnonzero(labels == c)
    if examples_per_class > 0:
      if len(members) < examples_per_class:
        raise DataError(f"{spec.name}:{spec.split} has {len(members)} examples of class {c}, fewer than "
                        f"dataset.examples_per_class={examples_per_class}; lower it")
      members = members[np.random.default_rng([seed, c]).permutation(len(members))[:examples_per_class]]
    elif len(members) == 0:
      raise DataError(f"{spec.name}:{spec.split} has no example of class {c}; drop it from dataset.classes")
    chosen.append(members)
  indices = np.sort(np.concatenate(chosen))
  kept_names = tuple(class_names[c] for c in classes) if class_names else ()
  if key == spec.label_key:
    subset_spec = dataclasses.replace(spec, num_examples=len(indices), num_classes=len(classes),
                                      class_names=kept_names)
  else:  # an identity: its feature is renumbered, the spec's (absent) label stays as it was
    features = typed_features(spec)
    features[key] = dataclasses.replace(features[key], num_classes=len(classes), class_names=kept_names)
    subset_spec = dataclasses.replace(spec, num_examples=len(indices), features=features)
  return SubsetSource(source, indices, label_map, key), subset_spec


def from_config(cfg: ml_collections.ConfigDict, source: Sequence[Any], spec: DatasetSpec,
                train: bool) -> tuple[Sequence[Any], DatasetSpec]:
  """Applies `dataset.classes` / `dataset.examples_per_class` (training split only) to a loaded split, or
  `dataset.eval_classes` (when set) to an evaluation split.

  Returns the source and spec unchanged when none of them applies.
  """
  if cfg.examples_per_class < 0:
    raise ConfigError(f"dataset.examples_per_class={cfg.examples_per_class} must be >= 0 (0 keeps every example)")
  per_class = cfg.examples_per_class if train else 0
  key = "dataset.classes" if train or not cfg.get("eval_classes", "") else "dataset.eval_classes"
  classes = cfg[key.split(".")[1]]
  if not classes and per_class == 0:
    return source, spec
  return select(source, spec, parse_classes(classes, group_classes(spec)[1], key), per_class, cfg.subset_seed)
