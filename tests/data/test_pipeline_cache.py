"""Splits decoded once into memory give the same batches as the TFDS array_record reader."""

import numpy as np

from vision_jax.data import datasets, pipeline, sources


def test_cached_embedded_digits_give_identical_train_and_eval_batches(data_dir):
  source, spec = datasets.load("mnist_embedded", "test", data_dir)
  cached = pipeline.cache_in_memory(source, spec, max_mib=64)
  assert isinstance(cached, sources.ArraySource) and len(cached) == spec.num_examples
  for make in (lambda s: pipeline.train_dataset(s, spec, 64, 3, seed=5),
               lambda s: pipeline.eval_dataset(s, spec, 600)):
    for ours, reference in zip(make(cached), make(source)):
      assert ours.keys() == reference.keys()
      for key in ours:
        assert ours[key].dtype == reference[key].dtype
        np.testing.assert_array_equal(ours[key], reference[key])


def test_large_or_disabled_splits_stay_on_the_reader(data_dir):
  source, spec = datasets.load("mnist_embedded", "test", data_dir)
  assert pipeline.cache_in_memory(source, spec, max_mib=0) is source
  assert pipeline.cache_in_memory(source, spec, max_mib=0.1) is source  # 2,000 digits are ~1.5 MiB
