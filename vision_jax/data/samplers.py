"""Which examples make each training batch: samplers, each a pure function of (seed, step).

A sampler draws the whole global batch of a step from `np.random.default_rng` seeded by (seed, step) (the
uniform sampler by (seed, epoch)), so every process computes the same global batch and takes its contiguous
slice, and a run resumed at step s reads exactly what it would have read. `draw` returns arrays of length G
(the global batch size): `index` (the examples to read) and, per sampler, further per-example arrays the batch
carries.

  * `Uniform()`: each epoch a seeded permutation of the split, batch b of the epoch its positions
    [b*G, (b+1)*G) (the remainder is dropped) - the pipeline's order since the start.
  * `Balanced(examples_per_class=K)`: P = G / K classes, K examples each, class-major
    ([c0 x K, c1 x K, ...]); the P classes are distinct when the split has at least P, and a class's K examples
    are distinct when it has at least K (otherwise drawn with replacement). For triplet / batch-hard mining.
  * `Pairs(positive_fraction=f)`: G pairs. The first examples follow the uniform epochs; exactly round(f * G)
    positions (seeded) take a partner of the same class (another example when the class has one), the others a
    partner from a different class (the class drawn uniformly among the others, then the example). Extra arrays:
    `index2` (the partners) and `same` int32 (1 when the two labels agree). The pipeline reads `image2`,
    `label2` from `index2`.
  * `Episodes(ways=N, shots=K, queries=Q, classes=...)`: G / (N (K + Q)) episodes per batch. Each episode draws
    N distinct classes from `classes` (all classes when empty) and K + Q distinct examples per class (with
    replacement when a class has fewer). Layout of one episode, N (K + Q) rows: the support set first,
    class-major (way 0's K shots, way 1's K shots, ...), then the queries, class-major. Extra arrays:
    `episode_label` int32 (the way 0..N-1 of each row, the class's position in the episode) and `query` int32
    (1 for query rows). Each process's slice must hold whole episodes.

Label-based samplers read the split's labels once (`split_labels`); a split without class labels but with an
`identity` feature (faces: the person) is grouped by that identity instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, Sequence

import numpy as np

from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError, DataError

NAMES = ("uniform", "balanced", "pairs", "episodes")


class ClassIndex:
  """A split's labels grouped by class, for drawing examples of a class quickly.

  Attributes:
    num_examples: examples in the split.
    labels: int32 [num_examples], or None for samplers that need none.
    classes: sorted distinct labels [C].
    order: [num_examples] example indices sorted by class (stable); class i's members are
      order[starts[i]:starts[i] + counts[i]].
    starts, counts: [C] each.
    class_of: [num_examples] position of each example's class in `classes`.
  """

  def __init__(self, num_examples: int, labels: np.ndarray | None = None):
    self.num_examples = num_examples
    self.labels = None if labels is None else np.asarray(labels, np.int32).reshape(-1)
    if self.labels is None:
      return
    if len(self.labels) != num_examples:
      raise DataError(f"read {len(self.labels)} labels for a split of {num_examples} examples; the source and its "
                      "spec disagree")
    self.classes, self.class_of, self.counts = np.unique(self.labels, return_inverse=True, return_counts=True)
    self.order = np.argsort(self.class_of, kind="stable")
    self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
    self.rank = np.empty(num_examples, np.int64)  # position of each example among its class's members
    self.rank[self.order] = np.arange(num_examples) - np.repeat(self.starts, self.counts)

  def members(self, class_position: int) -> np.ndarray:
    """Example indices of the class at `class_position` in `classes`."""
    start = self.starts[class_position]
    return self.order[start:start + self.counts[class_position]]


def grouping_key(spec: DatasetSpec) -> str:
  """The feature label-based samplers group examples by: the class label, else the first `identity` feature
  (e.g. the person of a face dataset); "" when the split has neither."""
  return spec.label_key or next(iter(spec.keys_of_kind("identity")), "")


def split_labels(source: Sequence[Any], spec: DatasetSpec, chunk: int = 1024) -> np.ndarray:
  """The class label (or identity, `grouping_key`) of every example of the split, int32 [num_examples].

  Taken straight from an in-memory source's arrays (`sources.ArraySource`) when it has them, otherwise read
  record by record in chunks (decoding them: ~0.3 s for the 8,000 embedded digits' array_record split).
  """
  key = grouping_key(spec)
  if not key:
    raise DataError(f"{spec.name}:{spec.split} has no class labels or identities, which this sampler draws by; use "
                    "input.sampler='uniform'")
  arrays = getattr(source, "arrays", None)
  if isinstance(arrays, dict) and key in arrays:
    return np.asarray(arrays[key], np.int32).reshape(-1)[:spec.num_examples]
  getitems = getattr(source, "__getitems__", None)
  labels = []
  for start in range(0, spec.num_examples, chunk):
    indices = list(range(start, min(start + chunk, spec.num_examples)))
    records = getitems(indices) if getitems else [source[i] for i in indices]
    labels.extend(int(np.asarray(r[key])) for r in records)
  return np.asarray(labels, np.int32)


class Sampler(Protocol):
  """What the pipeline needs of a sampler (module docstring)."""

  needs_labels: bool

  def check(self, spec: DatasetSpec, global_batch_size: int, local_batch_size: int) -> None:
    """Raises ConfigError/DataError when the batch sizes do not suit this sampler."""

  def draw(self, seed: int, step: int, global_batch_size: int, split: ClassIndex) -> dict[str, np.ndarray]:
    """The global batch of `step`: `index` [G] and the sampler's extra arrays [G]."""


def _generator(seed: int, step: int, stream: int) -> np.random.Generator:
  return np.random.default_rng([seed, step, stream])


@dataclasses.dataclass(frozen=True)
class Uniform:
  """Seeded per-epoch permutations (module docstring)."""

  needs_labels = False

  def check(self, spec: DatasetSpec, global_batch_size: int, local_batch_size: int) -> None:
    if spec.num_examples < global_batch_size:
      raise DataError(f"{spec.name}:{spec.split} has {spec.num_examples} examples, fewer than one batch of "
                      f"{global_batch_size}; lower the batch size")

  def draw(self, seed: int, step: int, global_batch_size: int, split: ClassIndex) -> dict[str, np.ndarray]:
    epoch, batch_in_epoch = divmod(int(step), split.num_examples // global_batch_size)
    order = np.random.default_rng([seed, epoch]).permutation(split.num_examples)
    start = batch_in_epoch * global_batch_size
    return {"index": order[start:start + global_batch_size]}


def _draw_members(rng: np.random.Generator, split: ClassIndex, class_position: int, count: int) -> np.ndarray:
  members = split.members(class_position)
  return members[rng.choice(len(members), count, replace=len(members) < count)]


@dataclasses.dataclass(frozen=True)
class Balanced:
  """P classes x K examples per batch (module docstring)."""

  examples_per_class: int = 4
  needs_labels = True

  def check(self, spec: DatasetSpec, global_batch_size: int, local_batch_size: int) -> None:
    k = self.examples_per_class
    if k < 1 or global_batch_size % k:
      raise ConfigError(f"the balanced sampler needs a batch size that is a multiple of examples_per_class={k}; "
                        f"got {global_batch_size}")

  def draw(self, seed: int, step: int, global_batch_size: int, split: ClassIndex) -> dict[str, np.ndarray]:
    rng = _generator(seed, step, 1)
    num_classes, k = len(split.classes), self.examples_per_class
    chosen = rng.choice(num_classes, global_batch_size // k, replace=global_batch_size // k > num_classes)
    return {"index": np.concatenate([_draw_members(rng, split, c, k) for c in chosen])}


@dataclasses.dataclass(frozen=True)
class Pairs:
  """Same/different pairs at a set positive fraction (module docstring)."""

  positive_fraction: float = 0.5
  needs_labels = True

  def check(self, spec: DatasetSpec, global_batch_size: int, local_batch_size: int) -> None:
    if not 0.0 <= self.positive_fraction <= 1.0:
      raise ConfigError(f"positive_fraction={self.positive_fraction} is a fraction of the pairs; use [0, 1]")
    if "image2" in spec.extra_features or "label2" in spec.extra_features:
      raise DataError(f"{spec.name} already pairs its examples (image2/label2); use the uniform sampler with it")
    Uniform().check(spec, global_batch_size, local_batch_size)

  def draw(self, seed: int, step: int, global_batch_size: int, split: ClassIndex) -> dict[str, np.ndarray]:
    first = Uniform().draw(seed, step, global_batch_size, split)["index"]
    rng = _generator(seed, step, 2)
    want_same = rng.permutation(np.arange(global_batch_size) < round(self.positive_fraction * global_batch_size))
    cls = split.class_of[first]
    counts = split.counts[cls]
    # Same class: another member (skip the first example's own rank) when there is one.
    others = np.maximum(counts - 1, 1)
    pick = rng.integers(0, others)
    pick = np.where(counts > 1, pick + (pick >= split.rank[first]), split.rank[first])
    same_partner = split.order[split.starts[cls] + pick]
    # Different class: one of the other classes uniformly, then one of its members.
    num_classes = len(split.classes)
    other_cls = (cls + rng.integers(1, max(num_classes, 2), global_batch_size)) % num_classes
    other_partner = split.order[split.starts[other_cls] + rng.integers(0, split.counts[other_cls])]
    second = np.where(want_same, same_partner, other_partner)
    same = (split.labels[first] == split.labels[second]).astype(np.int32)
    return {"index": first, "index2": second, "same": same}


@dataclasses.dataclass(frozen=True)
class Episodes:
  """N-way K-shot episodes with Q queries per class (module docstring)."""

  ways: int = 5
  shots: int = 1
  queries: int = 5
  classes: tuple[int, ...] = ()
  needs_labels = True

  @property
  def episode_size(self) -> int:
    """Rows of one episode: ways * (shots + queries)."""
    return self.ways * (self.shots + self.queries)

  def check(self, spec: DatasetSpec, global_batch_size: int, local_batch_size: int) -> None:
    if min(self.ways, self.shots) < 1 or self.queries < 0:
      raise ConfigError(f"episodes need ways >= 1, shots >= 1, queries >= 0; got {self.ways}, {self.shots}, "
                        f"{self.queries}")
    if local_batch_size % self.episode_size:
      raise ConfigError(f"a {self.ways}-way {self.shots}-shot episode with {self.queries} queries per class has "
                        f"{self.episode_size} examples; make the per-process batch ({local_batch_size}) a multiple "
                        "of it")

  def _class_positions(self, split: ClassIndex) -> np.ndarray:
    if not self.classes:
      return np.arange(len(split.classes))
    positions = np.searchsorted(split.classes, self.classes)
    positions = np.minimum(positions, len(split.classes) - 1)
    missing = [c for c, p in zip(self.classes, positions) if split.classes[p] != c]
    if missing:
      raise DataError(f"episode classes {missing} have no examples in the split; choose among "
                      f"{split.classes.tolist()}")
    return positions

  def draw(self, seed: int, step: int, global_batch_size: int, split: ClassIndex) -> dict[str, np.ndarray]:
    positions = self._class_positions(split)
    if len(positions) < self.ways:
      raise DataError(f"{self.ways}-way episodes need {self.ways} classes; only {len(positions)} are available: "
                      "lower ways or widen the episode classes")
    rng = _generator(seed, step, 3)
    n, k, q = self.ways, self.shots, self.queries
    index, way = [], []
    for _ in range(global_batch_size // self.episode_size):
      chosen = rng.choice(positions, n, replace=False)
      drawn = np.stack([_draw_members(rng, split, c, k + q) for c in chosen])  # [N, K + Q]
      index += [drawn[:, :k].reshape(-1), drawn[:, k:].reshape(-1)]
      way += [np.repeat(np.arange(n), k), np.repeat(np.arange(n), q)]
    query = np.tile(np.concatenate([np.zeros(n * k, np.int32), np.ones(n * q, np.int32)]),
                    global_batch_size // self.episode_size)
    return {"index": np.concatenate(index), "episode_label": np.concatenate(way).astype(np.int32), "query": query}


def build(name: str = "uniform", **options: Any) -> Sampler:
  """The sampler called `name` ("uniform", "balanced", "pairs", "episodes") with its options.

  Raises:
    ConfigError: an unknown name or an option the sampler does not take.
  """
  kinds = {"uniform": Uniform, "balanced": Balanced, "pairs": Pairs, "episodes": Episodes}
  if name not in kinds:
    raise ConfigError(f"unknown sampler {name!r}; use one of {', '.join(NAMES)}")
  if "classes" in options:
    options["classes"] = tuple(int(c) for c in options["classes"])
  try:
    return kinds[name](**options)
  except TypeError:
    fields = [f.name for f in dataclasses.fields(kinds[name])]
    raise ConfigError(f"sampler {name!r} does not take {sorted(options)}; its options: {fields or 'none'}") from None
