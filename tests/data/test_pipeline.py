"""Grain pipelines: seeded epochs, per-process slices of one global batch, padded evaluation, resume."""

import numpy as np
import pytest

from vision_jax.data.features import DatasetSpec
from vision_jax.data import host_resize, pipeline
from vision_jax.errors import ConfigError


class ArraySource:
  """A tiny random-access source whose image pixels encode the example index."""

  def __init__(self, n):
    self.n = n

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    return {"image": np.full((2, 2, 1), i, np.int32), "label": i % 10}


def _spec(n):
  return DatasetSpec("toy", "train", n, (2, 2, 1), 10, tuple(map(str, range(10))))


def _ids(batch):
  return batch["image"][:, 0, 0, 0].tolist()


def test_training_epochs_are_seeded_permutations_without_remainder():
  n, g = 23, 5
  batches = list(pipeline.train_dataset(ArraySource(n), _spec(n), g, num_steps=8, seed=7))
  first_epoch = sum((_ids(b) for b in batches[:4]), [])
  assert len(set(first_epoch)) == 20  # 4 full batches, 3 examples dropped
  second_epoch = sum((_ids(b) for b in batches[4:8]), [])
  assert len(set(second_epoch)) == 20 and first_epoch != second_epoch
  again = list(pipeline.train_dataset(ArraySource(n), _spec(n), g, num_steps=8, seed=7))
  assert [_ids(b) for b in again] == [_ids(b) for b in batches]
  other_seed = list(pipeline.train_dataset(ArraySource(n), _spec(n), g, num_steps=8, seed=8))
  assert [_ids(b) for b in other_seed] != [_ids(b) for b in batches]


def test_process_slices_concatenate_to_the_single_process_batch():
  n, g = 40, 8
  single = list(pipeline.train_dataset(ArraySource(n), _spec(n), g, num_steps=6, seed=1))
  parts = [list(pipeline.train_dataset(ArraySource(n), _spec(n), g, num_steps=6, seed=1,
                                       sharding=pipeline.Sharding(p, 4))) for p in range(4)]
  for step in range(6):
    assert sum((_ids(parts[p][step]) for p in range(4)), []) == _ids(single[step])


@pytest.mark.parametrize("processes", [1, 2])
def test_evaluation_sees_every_example_exactly_once(processes):
  n, g = 23, 10
  seen = []
  for p in range(processes):
    for batch in pipeline.eval_dataset(ArraySource(n), _spec(n), g, pipeline.Sharding(p, processes)):
      assert batch["image"].shape[0] == g // processes
      seen += [i for i, m in zip(_ids(batch), batch["mask"]) if m]
  assert sorted(seen) == list(range(n))
  assert pipeline.num_eval_batches(n, g) == 3


def test_iterator_state_resumes_at_the_same_batch():
  n = 50
  dataset = pipeline.train_dataset(ArraySource(n), _spec(n), 5, num_steps=12, seed=3)
  iterator = pipeline.iterate(dataset)
  for _ in range(7):
    next(iterator)
  state = iterator.get_state()
  expected = [_ids(b) for b in iterator]
  resumed = pipeline.iterate(dataset, state)
  assert [_ids(b) for b in resumed] == expected


def test_batch_not_divisible_by_processes_is_a_config_error():
  with pytest.raises(ConfigError, match="not divisible by the 3 processes"):
    pipeline.local_batch_size(10, pipeline.Sharding(0, 3))


def test_host_resize_and_center_crop():
  image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
  # Shorter side already equals the target: no resampling, only the central 20x20 window.
  np.testing.assert_array_equal(host_resize.resize_and_center_crop(image, 20, crop_fraction=1.0), image[:, 5:25])
  gray = np.full((50, 40, 1), 7, np.uint8)
  out = host_resize.resize_and_center_crop(gray, 16)
  assert out.shape == (16, 16, 1) and (out == 7).all()


def test_training_batches_of_varying_image_sizes_are_resized():
  class Varying(ArraySource):
    def __getitem__(self, i):
      return {"image": np.full((10 + i, 12 + 2 * i, 3), i, np.uint8), "label": i % 10}

  batch = next(iter(pipeline.train_dataset(Varying(8), _spec(8), 4, num_steps=1, seed=0, image_size=8)))
  assert batch["image"].shape == (4, 8, 8, 3)
  assert all((im == im[0, 0, 0]).all() for im in batch["image"])
