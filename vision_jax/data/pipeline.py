"""Grain input pipelines over random-access sources: deterministic, resumable, multi-host aware.

Both pipelines are `grain.MapDataset`s indexed by batch number, so a batch is a pure function of
(seed, batch number, process index): resuming from a checkpoint restores the grain iterator state and the
run continues bit-identically, and the global batch is the same whatever the number of processes.

* Training: each epoch is a fresh seeded permutation of the split; global batch `b` holds the examples at
  positions [b*G, (b+1)*G) of the concatenated epochs (remainder dropped per epoch); process p of P takes its
  contiguous slice of G/P examples.
* Evaluation: one pass in order; the last global batch is padded and a `mask` marks the real examples, so every
  example counts exactly once whatever the batch size and process count.

Batches are dicts of NumPy arrays: `image` (uint8 or float, [L, H, W, C], or [L, *shape] for inputs of another
rank such as [L, T, C] signals), `label` int32 [L], the dataset's `extra_features` as stored ([L, *shape]) and,
for evaluation, `mask` bool [L]. Image augmentation and normalization run on device inside the jitted step
(`vision_jax.data.augment`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Sequence

import grain
import jax
import numpy as np

from vision_jax.data import sources
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError, DataError


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


def resize_and_center_crop(image: np.ndarray, size: int, crop_fraction: float = 0.875) -> np.ndarray:
  """Resizes the shorter side to size / crop_fraction (bilinear), then crops the central size x size.

  Args:
    image: uint8 [H, W] or [H, W, C].
    size: output side length.
    crop_fraction: fraction of the resized shorter side kept by the crop (0.875: 224 from 256).

  Returns:
    uint8 [size, size, C] (C=1 for grayscale input).
  """
  from PIL import Image  # pylint: disable=import-outside-toplevel
  squeeze = image.ndim == 3 and image.shape[-1] == 1
  pil = Image.fromarray(image[..., 0] if squeeze else image)
  width, height = pil.size
  short = max(size, int(round(size / crop_fraction)))
  scale = short / min(width, height)
  new_w, new_h = max(size, int(round(width * scale))), max(size, int(round(height * scale)))
  pil = pil.resize((new_w, new_h), Image.BILINEAR)
  left, top = (new_w - size) // 2, (new_h - size) // 2
  out = np.asarray(pil.crop((left, top, left + size, top + size)))
  return out[..., None] if out.ndim == 2 else out


def _read(source: Sequence[Any], spec: DatasetSpec, indices: np.ndarray,
          image_size: int = 0) -> dict[str, np.ndarray]:
  take = getattr(source, "take", None)
  if take is not None and not image_size:  # in-memory arrays: one gather per feature
    arrays = take(np.asarray(indices))
    images = arrays[spec.image_key]
    if images.ndim == len(spec.image_shape):
      images = images[..., None]
    batch = {"image": images, "label": np.asarray(arrays[spec.label_key], np.int32)}
    batch.update({key: arrays[key] for key in spec.extra_features})
    return batch
  getitems = getattr(source, "__getitems__", None)
  records = getitems(indices.tolist()) if getitems else [source[int(i)] for i in indices]
  decoded = [np.asarray(r[spec.image_key]) for r in records]
  if image_size:
    decoded = [resize_and_center_crop(image, image_size) for image in decoded]
  images = np.stack(decoded)
  if images.ndim == len(spec.image_shape):  # stored without its channel axis (e.g. grayscale [H, W])
    images = images[..., None]
  labels = np.asarray([r[spec.label_key] for r in records], dtype=np.int32)
  batch = {"image": images, "label": labels}
  for key in spec.extra_features:
    batch[key] = np.stack([np.asarray(r[key]) for r in records])
  return batch


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
  arrays = {spec.image_key: batch["image"], spec.label_key: batch["label"]}
  arrays.update({key: batch[key] for key in spec.extra_features})
  return sources.ArraySource(arrays)


class _TrainBatch:
  """Batch number -> this process's slice of that global training batch."""

  def __init__(self, source, spec: DatasetSpec, global_batch_size: int, seed: int, sharding: Sharding,
               image_size: int = 0):
    self.source, self.spec, self.seed, self.image_size = source, spec, seed, image_size
    self.global_batch_size = global_batch_size
    self.local_batch_size = local_batch_size(global_batch_size, sharding)
    self.offset = sharding.process_index * self.local_batch_size
    self.steps_per_epoch = spec.num_examples // global_batch_size
    if self.steps_per_epoch == 0:
      raise DataError(f"{spec.name}:{spec.split} has {spec.num_examples} examples, fewer than one batch of "
                      f"{global_batch_size}; lower the batch size")

  def indices(self, step: int) -> np.ndarray:
    epoch, batch_in_epoch = divmod(int(step), self.steps_per_epoch)
    order = np.random.default_rng([self.seed, epoch]).permutation(self.spec.num_examples)
    start = batch_in_epoch * self.global_batch_size + self.offset
    return order[start:start + self.local_batch_size]

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    return _read(self.source, self.spec, self.indices(step), self.image_size)


class _EvalBatch:
  """Batch number -> this process's slice of that global evaluation batch, padded, with a mask."""

  def __init__(self, source, spec: DatasetSpec, global_batch_size: int, sharding: Sharding,
               image_size: int = 0):
    self.source, self.spec, self.image_size = source, spec, image_size
    self.global_batch_size = global_batch_size
    self.local_batch_size = local_batch_size(global_batch_size, sharding)
    self.offset = sharding.process_index * self.local_batch_size

  def __call__(self, batch: int) -> dict[str, np.ndarray]:
    positions = batch * self.global_batch_size + self.offset + np.arange(self.local_batch_size)
    mask = positions < self.spec.num_examples
    out = _read(self.source, self.spec, np.where(mask, positions, 0), self.image_size)
    out["mask"] = mask
    return out


def num_eval_batches(num_examples: int, global_batch_size: int) -> int:
  """Global evaluation batches needed to see every example once."""
  return -(-num_examples // global_batch_size)


def train_dataset(source: Sequence[Any], spec: DatasetSpec, global_batch_size: int, num_steps: int,
                  seed: int, sharding: Sharding = Sharding(), num_threads: int = 2,
                  prefetch: int = 4, image_size: int = 0) -> grain.IterDataset:
  """Training batches 0..num_steps-1 as a grain iterable with threaded reads.

  Args:
    source: random-access source (`source[i]` -> dict of arrays).
    spec: the split's `DatasetSpec`.
    global_batch_size: examples per step over all processes.
    num_steps: number of batches the iterator yields.
    seed: shuffling seed (each epoch uses the permutation of (seed, epoch)).
    sharding: this process's index and the process count.
    num_threads: grain reader threads.
    prefetch: batches read ahead.
    image_size: if > 0, every image is resized and centre-cropped to image_size x image_size on the host
      (for datasets of varying image sizes, e.g. imagenet2012).

  Returns:
    A `grain.IterDataset`; its iterator's `get_state()`/`set_state()` give the resumable data position.
  """
  reader = _TrainBatch(source, spec, global_batch_size, seed, sharding, image_size)
  return grain.MapDataset.range(num_steps).map(reader).to_iter_dataset(
      grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch))


def eval_dataset(source: Sequence[Any], spec: DatasetSpec, global_batch_size: int,
                 sharding: Sharding = Sharding(), num_threads: int = 2, prefetch: int = 4,
                 image_size: int = 0) -> grain.IterDataset:
  """One in-order pass over the split in padded global batches with a `mask` (see module docstring)."""
  reader = _EvalBatch(source, spec, global_batch_size, sharding, image_size)
  num_batches = num_eval_batches(spec.num_examples, global_batch_size)
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
