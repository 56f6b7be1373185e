"""Input throughput: examples per second of the host pipeline and of the device augmentation, measured apart.

    >>> from vision_jax.data import throughput
    >>> source, spec = throughput.scenes_like_source(512)
    >>> throughput.pipeline_throughput(source, spec, image_size=128, resize="letterbox")
    {'host_examples_per_s': ..., 'device_examples_per_s': ..., ...}
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import jax
import numpy as np

from vision_jax.data import augment, pipeline, sources
from vision_jax.data.augment import annotations
from vision_jax.data.features import DatasetSpec, Feature, make_spec, object_features


def scenes_like_source(num_examples: int = 512, size: int = 96, max_objects: int = 6,
                       seed: int = 0) -> tuple[sources.ArraySource, DatasetSpec]:
  """An in-memory detection split shaped like digit_scenes: uint8 [size, size, 1] images with 1..max_objects
  filled rectangles, their padded boxes, labels, instance masks and a semantic mask."""
  rng = np.random.default_rng(seed)
  images = np.zeros((num_examples, size, size, 1), np.uint8)
  semantic = np.zeros((num_examples, size, size), np.uint8)
  masks = np.zeros((num_examples, max_objects, size, size), np.uint8)
  boxes = np.zeros((num_examples, max_objects, 4), np.float32)
  labels = np.full((num_examples, max_objects), -1, np.int32)
  counts = rng.integers(1, max_objects + 1, num_examples).astype(np.int32)
  for i, count in enumerate(counts):
    for j in range(count):
      h, w = rng.integers(min(8, size // 4), size // 3 + 1, 2)
      y, x = rng.integers(0, size - h), rng.integers(0, size - w)
      labels[i, j] = rng.integers(0, 10)
      images[i, y:y + h, x:x + w] = rng.integers(64, 256)
      semantic[i, y:y + h, x:x + w] = labels[i, j] + 1
      masks[i, j, y:y + h, x:x + w] = 1
      boxes[i, j] = (x, y, x + w, y + h)
  arrays = {"image": images, "boxes": boxes, "box_labels": labels, "num_objects": counts, "instance_masks": masks,
            "semantic_mask": semantic}
  features = {"image": Feature("image", (size, size, 1), "uint8"),
              **object_features(max_objects, 10, mask_shape=(size, size)),
              "semantic_mask": Feature("mask", (size, size), "uint8", 11)}
  return sources.ArraySource(arrays), make_spec("scenes_like", "train", num_examples, features)


def _per_second(examples: int, seconds: float) -> float:
  return examples / max(seconds, 1e-9)


def pipeline_throughput(source: Sequence[Any], spec: DatasetSpec, batch_size: int = 64, steps: int = 20,
                        image_size: int = 128, resize: str = "letterbox",
                        augment_spec: str = "flip_lr|zoom(scale=(0.8, 1.2))|translate(x=0.1, y=0.1)",
                        num_threads: int = 2, prefetch: int = 4, seed: int = 0) -> dict[str, float]:
  """Measures the host pipeline and the jitted box-aware device augmentation on one split.

  Args:
    source, spec: the split (boxes and instance masks, if present, are moved by both stages).
    batch_size: examples per batch.
    steps: batches timed per stage (after one warm-up batch, and the augmentation's compilation).
    image_size, resize: the host resizing (`pipeline.train_dataset`).
    augment_spec: the device augmentation (`augment.build`), applied to images, boxes and packed masks.
    num_threads, prefetch: grain reader threads and read-ahead.
    seed: sampling and augmentation seed.

  Returns:
    {"host_examples_per_s", "device_examples_per_s", "compile_s", "batch_size", "steps"}.
  """
  dataset = pipeline.train_dataset(source, spec, batch_size, steps + 1, seed, num_threads=num_threads,
                                   prefetch=prefetch, image_size=image_size, resize=resize)
  iterator = iter(dataset)
  first = next(iterator)
  start = time.perf_counter()
  for _ in iterator:
    pass
  host = _per_second(steps * batch_size, time.perf_counter() - start)

  semantic = first.get("semantic_mask")
  instance = first.get("instance_masks")
  masks = None if semantic is None and instance is None else annotations.pack_masks(semantic, instance)
  transform = augment.build(augment_spec)
  run = jax.jit(lambda rng, images, boxes, masks: transform.apply(rng, images, boxes=boxes, masks=masks))
  args = (first["image"], first.get("boxes"), masks)
  start = time.perf_counter()
  jax.block_until_ready(run(jax.random.PRNGKey(seed), *args))
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for step in range(steps):
    jax.block_until_ready(run(jax.random.PRNGKey(step), *args))
  device = _per_second(steps * batch_size, time.perf_counter() - start)
  return {"host_examples_per_s": host, "device_examples_per_s": device, "compile_s": compile_s,
          "batch_size": float(batch_size), "steps": float(steps)}
