"""Samplers: the uniform order of old, class-balanced batches, pairs and episodes, resumable and multi-host exact."""

import numpy as np
import pytest

from vision_jax.data import pipeline, samplers, sources
from vision_jax.data.features import Feature, make_spec
from vision_jax.errors import ConfigError, DataError

COUNTS = (9, 7, 6, 3, 8)  # examples per class; class 3 has fewer than K = 4


def _split(counts=COUNTS, seed=0):
  labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts)).astype(np.int32)
  n = len(labels)
  # The image's pixels hold the example index, so batches say which examples they read.
  source = sources.ArraySource({"image": np.arange(n, dtype=np.int32).reshape(n, 1, 1, 1), "label": labels})
  spec = make_spec("toy", "train", n, {"image": Feature("image", (1, 1, 1), "int32"),
                                       "label": Feature("label", (), "int32", len(counts))})
  return source, spec, labels


def _batches(sampler, steps=6, batch=8, sharding=pipeline.Sharding(), seed=3):
  source, spec, _ = _split()
  return list(pipeline.train_dataset(source, spec, batch, steps, seed, sharding=sharding, sampler=sampler))


def test_uniform_sampler_gives_the_original_epoch_permutations():
  source, spec, _ = _split()
  n, g = spec.num_examples, 8
  batches = list(pipeline.train_dataset(source, spec, g, 9, seed=3))
  for step, batch in enumerate(batches):  # the pipeline's order since its first version, written out
    epoch, b = divmod(step, n // g)
    expected = np.random.default_rng([3, epoch]).permutation(n)[b * g:(b + 1) * g]
    np.testing.assert_array_equal(batch["image"].reshape(-1), expected)


def test_balanced_batches_hold_p_classes_of_k_examples():
  for batch in _batches(samplers.Balanced(examples_per_class=4), batch=12):
    ids, labels = batch["image"].reshape(-1), batch["label"]
    groups = labels.reshape(3, 4)
    assert (groups == groups[:, :1]).all() and len(set(groups[:, 0])) == 3  # 3 distinct classes, 4 each
    for group_ids, group in zip(ids.reshape(3, 4), groups[:, 0]):
      if COUNTS[group] >= 4:
        assert len(set(group_ids)) == 4  # without replacement where the class allows
      else:
        assert set(group_ids) <= set(np.flatnonzero(_split()[2] == group))


def test_pairs_have_the_set_positive_fraction_and_true_same_flags():
  _, _, labels = _split()
  for batch in _batches(samplers.Pairs(positive_fraction=0.25), batch=8):
    first, second = batch["image"].reshape(-1), batch["image2"].reshape(-1)
    np.testing.assert_array_equal(batch["label"], labels[first])
    np.testing.assert_array_equal(batch["label2"], labels[second])
    np.testing.assert_array_equal(batch["same"], (labels[first] == labels[second]).astype(np.int32))
    assert batch["same"].dtype == np.int32 and batch["same"].sum() == 2
    assert (first[batch["same"] == 1] != second[batch["same"] == 1]).all()
  uniform = _batches(samplers.Uniform(), batch=8)
  for paired, plain in zip(_batches(samplers.Pairs(), batch=8), uniform):  # first examples follow the epochs
    np.testing.assert_array_equal(paired["image"], plain["image"])


def test_episodes_layout_and_class_subset():
  _, _, labels = _split()
  sampler = samplers.Episodes(ways=2, shots=2, queries=1, classes=(0, 1, 4))
  for batch in _batches(sampler, batch=12):
    ids = batch["image"].reshape(-1)
    for episode in range(2):
      rows = slice(6 * episode, 6 * episode + 6)
      way, query, cls = batch["episode_label"][rows], batch["query"][rows], batch["label"][rows]
      np.testing.assert_array_equal(way, [0, 0, 1, 1, 0, 1])
      np.testing.assert_array_equal(query, [0, 0, 0, 0, 1, 1])
      assert cls[0] != cls[2] and set(cls) <= {0, 1, 4}
      np.testing.assert_array_equal(cls, np.array([cls[0], cls[2]])[way])  # one class per way
      np.testing.assert_array_equal(labels[ids[rows]], cls)
      for w in (0, 1):
        assert len(set(ids[rows][way == w])) == 3  # support and queries distinct


@pytest.mark.parametrize("sampler", [samplers.Balanced(2), samplers.Pairs(), samplers.Episodes(2, 1, 1)])
def test_process_slices_concatenate_and_resume_exactly(sampler):
  single = _batches(sampler, steps=4)
  parts = [_batches(sampler, steps=4, sharding=pipeline.Sharding(p, 2)) for p in range(2)]
  for step in range(4):
    for key in single[step]:
      np.testing.assert_array_equal(np.concatenate([parts[0][step][key], parts[1][step][key]]), single[step][key])
  source, spec, _ = _split()
  dataset = pipeline.train_dataset(source, spec, 8, 6, 3, sampler=sampler)
  iterator = pipeline.iterate(dataset)
  next(iterator), next(iterator)
  resumed = pipeline.iterate(dataset, iterator.get_state())
  for a, b in zip(resumed, single[2:]):
    np.testing.assert_array_equal(a["image"], b["image"])


def test_labels_are_read_from_arrays_or_records():
  source, spec, labels = _split()

  class Records:
    def __len__(self):
      return spec.num_examples

    def __getitem__(self, i):
      return source[i]

  np.testing.assert_array_equal(samplers.split_labels(source, spec), labels)
  np.testing.assert_array_equal(samplers.split_labels(Records(), spec, chunk=5), labels)


def test_sampler_configuration_errors():
  assert samplers.build("balanced", examples_per_class=2) == samplers.Balanced(2)
  assert samplers.build("episodes", classes=[1, 2]).classes == (1, 2)
  with pytest.raises(ConfigError, match="unknown sampler 'random'"):
    samplers.build("random")
  with pytest.raises(ConfigError, match="does not take"):
    samplers.build("pairs", ways=3)
  with pytest.raises(ConfigError, match="multiple of examples_per_class=3"):
    _batches(samplers.Balanced(3), batch=8)
  with pytest.raises(ConfigError, match="multiple of it"):
    _batches(samplers.Episodes(2, 1, 1), batch=8, sharding=pipeline.Sharding(0, 4))
  with pytest.raises(DataError, match="episode classes \\[7\\]"):
    _batches(samplers.Episodes(2, 1, 1, classes=(0, 7)))
  source, spec, _ = _split()
  unlabelled = make_spec("toy", "train", spec.num_examples, {"image": spec.features["image"]})
  with pytest.raises(DataError, match="no class labels"):
    pipeline.train_dataset(source, unlabelled, 8, 1, 0, sampler=samplers.Pairs())
