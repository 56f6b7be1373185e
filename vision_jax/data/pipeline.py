"""Grain input pipelines over random-access sources: deterministic, resumable, multi-host aware.

Both pipelines are `grain.MapDataset`s indexed by batch number, so a batch is a pure function of
(seed, batch number, process index): resuming from a checkpoint restores the grain iterator state and the
run continues bit-identically, and the global batch is the same whatever the number of processes.

* Training: a sampler (`samplers`) draws global batch `b` from (seed, b). By default each epoch is a fresh
  seeded permutation of the split and global batch `b` holds the examples at positions [b*G, (b+1)*G) of the
  concatenated epochs (remainder dropped per epoch); class-balanced, pair and episode samplers draw by label.
  Process p of P takes its contiguous slice of G/P examples.
* Evaluation: one pass in order; the last global batch is padded and a `mask` marks the real examples, so every
  example counts exactly once whatever the batch size and process count.

Batches are dicts of NumPy arrays: `image` (uint8 or float, [L, H, W, C], or [L, *shape] for inputs of another
rank such as [L, T, C] signals), `label` int32 [L] (when the dataset has labels), the dataset's `extra_features`
as stored ([L, *shape]), `resize_info` [L, 4] when resized on the host with annotations or letterboxed
(`host_resize`), the sampler's extras and, for evaluation, `mask` bool [L]. Image augmentation and
normalization run on device inside the jitted step (`vision_jax.data.augment`).

A second split (`second=`, e.g. CycleGAN's other domain, `dataset.train_split2`) puts its images into every
batch as `image2`: training draws them from that split's own seeded epochs (a separate stream of (seed, step),
so resuming stays bit-exact and each split keeps its own epoch length); evaluation reads it in order beside the
first, padded, with its own `mask2`, over as many batches as the longer split needs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Sequence

import grain
import jax
import numpy as np

from vision_jax.data import host_resize, samplers, sources
from vision_jax.data.features import DatasetSpec, Feature, typed_features
from vision_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Sharding:
  """This process's place among the processes that feed one global batch."""

  process_index: int = 0
  process_count: int = 1


def this_process() -> Sharding:
  """This process's index and the process count under `jax.distributed` (0 of 1 otherwise)."""
  return Sharding(process_index=jax.process_index(), process_count=jax.process_count())


def local_batch_size(global_batch_size: int, sharding: Sharding) -> int:
  """Examples per process in a global batch; the global size must divide evenly across processes."""
  if global_batch_size % sharding.process_count:
    raise ConfigError(f"batch size {global_batch_size} is not divisible by the {sharding.process_count} "
                      "processes; choose a multiple of the process count")
  return global_batch_size // sharding.process_count


class _Reader:
  """Indices -> a batch dict: one gather per feature from in-memory arrays, else record by record.

  With `image_size` > 0 every record is resized on the host by `host_resize.resize_example` (`resize` mode),
  its annotations moved with it; batches then also carry `resize_info` [L, 4] when the mode is letterbox or the
  dataset has boxes, masks or keypoints. Records whose object features are ragged are re-packed to the spec's
  static row count.
  """

  def __init__(self, source: Sequence[Any], spec: DatasetSpec, image_size: int = 0, resize: str = "center_crop",
               min_visible: float = 0.0):
    if resize not in host_resize.MODES:
      raise ConfigError(f"input resize mode {resize!r} is not supported; use one of {', '.join(host_resize.MODES)}")
    self.source, self.spec, self.image_size = source, spec, image_size
    self.resize, self.min_visible = resize, min_visible
    self.features = typed_features(spec)
    self.has_objects = bool(spec.keys_of_kind("boxes"))
    has_geometry = any(spec.keys_of_kind(kind) for kind in host_resize.GEOMETRY_KINDS)
    self.keys = list(spec.extra_features)
    if image_size and (resize == "letterbox" or has_geometry):
      self.keys.append("resize_info")

  def _record(self, record: dict[str, Any]) -> dict[str, Any]:
    if self.image_size:
      return host_resize.resize_example(record, self.image_size, self.features, self.spec.image_key, self.resize,
                                        self.min_visible)
    return host_resize.fit_objects(record, self.features) if self.has_objects else record

  def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    spec = self.spec
    take = getattr(self.source, "take", None)
    if take is not None and not self.image_size:  # in-memory arrays: one gather per feature
      arrays = take(np.asarray(indices))
      images = arrays[spec.image_key]
      if images.ndim == len(spec.image_shape):
        images = images[..., None]
      batch = {"image": images}
      if spec.label_key:
        batch["label"] = np.asarray(arrays[spec.label_key], np.int32)
      batch.update({key: arrays[key] for key in spec.extra_features})
      return batch
    getitems = getattr(self.source, "__getitems__", None)
    records = getitems(indices.tolist()) if getitems else [self.source[int(i)] for i in indices]
    records = [self._record(r) for r in records]
    images = np.stack([np.asarray(r[spec.image_key]) for r in records])
    if images.ndim == len(spec.image_shape):  # stored without its channel axis (e.g. grayscale [H, W])
      images = images[..., None]
    batch = {"image": images}
    if spec.label_key:
      batch["label"] = np.asarray([r[spec.label_key] for r in records], dtype=np.int32)
    for key in self.keys:
      batch[key] = np.stack([np.asarray(r[key]) for r in records])
    return batch


def _read(source: Sequence[Any], spec: DatasetSpec, indices: np.ndarray, image_size: int = 0) -> dict[str, np.ndarray]:
  return _Reader(source, spec, image_size)(indices)


def cache_in_memory(source: Sequence[Any], spec: DatasetSpec, max_mib: float) -> Sequence[Any]:
  """The split decoded once into in-memory arrays when it fits in `max_mib`; otherwise `source` unchanged.

  Reading a record from a TFDS array_record source decodes it each time (the embedded digits: ~24,000
  images/s on 2 cores); a small split decoded once is served by array gathers instead. Batches are identical.

  Args:
    source: a random-access source (`datasets.load`).
    spec: its split's spec; images of one fixed shape (not for datasets resized on the host).
    max_mib: largest decoded size to cache, in MiB (images counted as uint8); 0 disables caching.

  Returns:
    A `sources.ArraySource` over the decoded split, or `source`.
  """
  mib = spec.num_examples * int(np.prod(spec.image_shape)) / 2**20
  if max_mib <= 0 or mib > max_mib or hasattr(source, "take"):
    return source
  try:
    batch = _read(source, spec, np.arange(spec.num_examples))
  except ValueError:  # images of different shapes do not stack: leave them to the per-record reader
    return source
  arrays = {spec.image_key: batch["image"]}
  if spec.label_key:
    arrays[spec.label_key] = batch["label"]
  arrays.update({key: batch[key] for key in spec.extra_features})
  return sources.ArraySource(arrays)


def paired_spec(spec: DatasetSpec, second: DatasetSpec) -> DatasetSpec:
  """The spec a task sees when batches also carry `image2` from a second split `second` (`train_dataset`)."""
  if "image2" in typed_features(spec):
    raise ConfigError(f"{spec.name}:{spec.split} already pairs its examples with image2; drop "
                      "dataset.train_split2 / eval_split2")
  features = typed_features(spec)
  features["image2"] = Feature("image", tuple(second.image_shape), typed_features(second)[second.image_key].dtype)
  return dataclasses.replace(spec, features=features,
                             extra_features={**spec.extra_features, "image2": tuple(second.image_shape)})


def second_split_seed(seed: int) -> int:
  """The seed of a second split's epochs: a stream of its own, apart from the first split's (seed, epoch)."""
  return int(np.random.SeedSequence([seed, 2]).generate_state(1)[0])


class _TrainBatch:
  """Batch number -> this process's slice of the global training batch its sampler draws for that step (with a
  `second` reader: plus `image2` from that split's own uniform epochs)."""

  def __init__(self, reader: _Reader, global_batch_size: int, seed: int, sharding: Sharding,
               sampler: samplers.Sampler = samplers.Uniform(), second: _Reader | None = None):
    self.reader, self.spec, self.seed, self.sampler, self.second = reader, reader.spec, seed, sampler, second
    self.global_batch_size = global_batch_size
    self.local_batch_size = local_batch_size(global_batch_size, sharding)
    self.offset = sharding.process_index * self.local_batch_size
    sampler.check(self.spec, global_batch_size, self.local_batch_size)
    labels = samplers.split_labels(reader.source, self.spec) if sampler.needs_labels else None
    self.split = samplers.ClassIndex(self.spec.num_examples, labels)
    if second is not None:
      samplers.Uniform().check(second.spec, global_batch_size, self.local_batch_size)
      self.second_split = samplers.ClassIndex(second.spec.num_examples)

  def drawn(self, step: int) -> dict[str, np.ndarray]:
    """This process's slice of what the sampler draws for `step`: `index` [L] and the sampler's extras."""
    drawn = self.sampler.draw(self.seed, int(step), self.global_batch_size, self.split)
    return {key: value[self.offset:self.offset + self.local_batch_size] for key, value in drawn.items()}

  def indices(self, step: int) -> np.ndarray:
    """The examples of this process's slice of batch `step` [L]."""
    return self.drawn(step)["index"]

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    drawn = self.drawn(step)
    batch = self.reader(drawn.pop("index"))
    if "index2" in drawn:  # pairs: the partners' images and labels
      second = self.reader(drawn.pop("index2"))
      batch["image2"], batch["label2"] = second["image"], second[samplers.grouping_key(self.spec)]
    if self.second is not None:
      index = samplers.Uniform().draw(second_split_seed(self.seed), int(step), self.global_batch_size,
                                      self.second_split)["index"]
      batch["image2"] = self.second(index[self.offset:self.offset + self.local_batch_size])["image"]
    batch.update(drawn)
    return batch


class _EvalBatch:
  """Batch number -> this process's slice of that global evaluation batch, padded, with a mask."""

  def __init__(self, reader: _Reader, global_batch_size: int, sharding: Sharding, second: _Reader | None = None):
    self.reader, self.spec, self.second = reader, reader.spec, second
    self.global_batch_size = global_batch_size
    self.local_batch_size = local_batch_size(global_batch_size, sharding)
    self.offset = sharding.process_index * self.local_batch_size

  def __call__(self, batch: int) -> dict[str, np.ndarray]:
    positions = batch * self.global_batch_size + self.offset + np.arange(self.local_batch_size)
    mask = positions < self.spec.num_examples
    out = self.reader(np.where(mask, positions, 0))
    out["mask"] = mask
    if self.second is not None:
      out["mask2"] = positions < self.second.spec.num_examples
      out["image2"] = self.second(np.where(out["mask2"], positions, 0))["image"]
    return out


def num_eval_batches(num_examples: int, global_batch_size: int) -> int:
  """Global evaluation batches needed to see every example once."""
  return -(-num_examples // global_batch_size)


def train_dataset(source: Sequence[Any], spec: DatasetSpec, global_batch_size: int, num_steps: int,
                  seed: int, sharding: Sharding = Sharding(), num_threads: int = 2,
                  prefetch: int = 4, image_size: int = 0, resize: str = "center_crop", min_visible: float = 0.0,
                  sampler: samplers.Sampler = samplers.Uniform(),
                  second: tuple[Sequence[Any], DatasetSpec] | None = None) -> grain.IterDataset:
  """Training batches 0..num_steps-1 as a grain iterable with threaded reads.

  Args:
    source: random-access source (`source[i]` -> dict of arrays).
    spec: the split's `DatasetSpec`.
    global_batch_size: examples per step over all processes.
    num_steps: number of batches the iterator yields.
    seed: sampling seed (the uniform sampler's epoch e is the permutation of (seed, e)).
    sharding: this process's index and the process count.
    num_threads: grain reader threads.
    prefetch: batches read ahead.
    image_size: if > 0, every example is resized to image_size x image_size on the host, annotations moved
      with it (for datasets of varying image sizes, e.g. imagenet2012; `host_resize`).
    resize: how: "center_crop" (scale the shorter side, keep the centre) or "letterbox" (scale the longer
      side, pad).
    min_visible: objects whose box keeps less than this fraction of its area inside the resized image are removed.
    sampler: which examples make each batch (`samplers`): Uniform() (default), Balanced, Pairs or Episodes;
      pairs add `image2`, `label2`, `same`, episodes `episode_label`, `query`.
    second: (source, spec) of a second split whose images each batch carries as `image2` (module docstring);
      resized like the first.

  Returns:
    A `grain.IterDataset`; its iterator's `get_state()`/`set_state()` give the resumable data position.
  """
  second_reader = _Reader(second[0], second[1], image_size, resize, min_visible) if second else None
  reader = _TrainBatch(_Reader(source, spec, image_size, resize, min_visible), global_batch_size, seed, sharding,
                       sampler, second_reader)
  return grain.MapDataset.range(num_steps).map(reader).to_iter_dataset(
      grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch))


def eval_dataset(source: Sequence[Any], spec: DatasetSpec, global_batch_size: int,
                 sharding: Sharding = Sharding(), num_threads: int = 2, prefetch: int = 4,
                 image_size: int = 0, resize: str = "center_crop", min_visible: float = 0.0,
                 second: tuple[Sequence[Any], DatasetSpec] | None = None) -> grain.IterDataset:
  """One in-order pass over the split in padded global batches with a `mask` (see module docstring); host
  resizing as in `train_dataset`; a `second` (source, spec) adds `image2` and `mask2`, and the pass covers the
  longer of the two splits."""
  second_reader = _Reader(second[0], second[1], image_size, resize, min_visible) if second else None
  reader = _EvalBatch(_Reader(source, spec, image_size, resize, min_visible), global_batch_size, sharding,
                      second_reader)
  longest = max(spec.num_examples, second[1].num_examples if second else 0)
  num_batches = num_eval_batches(longest, global_batch_size)
  return grain.MapDataset.range(num_batches).map(reader).to_iter_dataset(
      grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch))


def steps_per_epoch(spec: DatasetSpec, global_batch_size: int) -> int:
  """Training steps in one epoch (remainder dropped)."""
  return spec.num_examples // global_batch_size


def iterate(dataset: grain.IterDataset, state: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
  """Returns an iterator over `dataset`, positioned at a saved `get_state()` when given."""
  iterator = iter(dataset)
  if state is not None:
    iterator.set_state(state)
  return iterator
