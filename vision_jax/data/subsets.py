"""Class and few-shot subsets of a dataset split, chosen by config (for transfer learning experiments).

`dataset.classes = "5,6,7,8,9"` keeps only those classes and renumbers their labels 0..4 in the order given
(class names follow); `dataset.examples_per_class = 50` then keeps 50 examples of each kept class from the
training split, drawn by `dataset.subset_seed` (the same examples whatever the training seed). Evaluation
splits keep every example of the kept classes. `dataset.eval_classes = "5,6,7,8,9"` gives the evaluation split
its own classes (renumbered 0..4 in the order given), e.g. classes held out of training for metric learning,
while the training split keeps `dataset.classes`.

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
from typing import Any, Sequence

import ml_collections
import numpy as np

from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError, DataError

_READ_CHUNK = 1024


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


def parse_classes(text: str, num_classes: int, key: str = "dataset.classes") -> tuple[int, ...]:
  """"5,6,7" -> (5, 6, 7), checked against the dataset's `num_classes`; "" -> every class. `key` names the
  setting in errors."""
  if not text.strip():
    return tuple(range(num_classes))
  try:
    classes = tuple(int(c) for c in text.replace(" ", "").split(","))
  except ValueError:
    raise ConfigError(f"{key}={text!r} is not a comma list of class indices; use e.g. '5,6,7'") from None
  bad = [c for c in classes if not 0 <= c < num_classes]
  if bad or len(set(classes)) != len(classes):
    raise ConfigError(f"{key}={text!r} must list distinct class indices in 0..{num_classes - 1}")
  return classes


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
  labels = read_labels(source, spec.label_key)
  label_map = np.full(max(spec.num_classes, int(labels.max()) + 1), -1, np.int64)
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
  subset_spec = dataclasses.replace(spec, num_examples=len(indices), num_classes=len(classes),
                                    class_names=tuple(spec.class_names[c] for c in classes))
  return SubsetSource(source, indices, label_map, spec.label_key), subset_spec


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
  return select(source, spec, parse_classes(classes, spec.num_classes, key), per_class, cfg.subset_seed)
