"""A second split as `image2` (CycleGAN's other domain): own seeded epochs, deterministic, resumable, sharded;
evaluation in order over the longer split with `mask2`."""

import numpy as np
import pytest

from vision_jax.data import pipeline, sources
from vision_jax.data.features import Feature, make_spec
from vision_jax.errors import ConfigError, DataError


def _split(name, n, first_id, shape=(2, 2, 1)):
  """A split whose image pixels encode an example id (first_id + index)."""
  ids = first_id + np.arange(n)
  images = np.broadcast_to(ids[:, None, None, None], (n,) + shape).astype(np.int32)
  spec = make_spec("toy", name, n, {"image": Feature("image", shape, "int32")})
  return sources.ArraySource({"image": images}), spec


def _ids(images):
  return images[:, 0, 0, 0].tolist()


def _train(n1=23, n2=17, g=5, steps=12, seed=3, **kwargs):
  source, spec = _split("trainA", n1, 0)
  return pipeline.train_dataset(source, spec, g, steps, seed, second=_split("trainB", n2, 1000), **kwargs)


def test_image2_comes_from_the_second_split_in_its_own_epochs():
  batches = list(_train())
  second = [[i - 1000 for i in _ids(b["image2"])] for b in batches]
  assert all(0 <= i < 17 for ids in second for i in ids)
  # 17 // 5 = 3 batches per epoch of the second split (2 dropped), 4 per epoch of the first (23 // 5).
  for epoch in range(4):
    drawn = sum(second[3 * epoch:3 * epoch + 3], [])
    assert len(set(drawn)) == 15
  assert sum(second[0:3], []) != sum(second[3:6], [])
  # The first split's batches are exactly those of a run without a second split.
  source, spec = _split("trainA", 23, 0)
  alone = list(pipeline.train_dataset(source, spec, 5, 12, 3))
  assert [_ids(b["image"]) for b in batches] == [_ids(b["image"]) for b in alone]
  assert set(batches[0]) == {"image", "image2"}


def test_second_split_draws_are_deterministic_seeded_and_a_separate_stream():
  first, again, other = list(_train()), list(_train()), list(_train(seed=4))
  assert [_ids(b["image2"]) for b in first] == [_ids(b["image2"]) for b in again]
  assert [_ids(b["image2"]) for b in first] != [_ids(b["image2"]) for b in other]
  # Same sizes: the second split's order is not the first split's (its stream is its own).
  same_size = list(_train(n1=20, n2=20, steps=4))
  assert [[i - 1000 for i in _ids(b["image2"])] for b in same_size] != [_ids(b["image"]) for b in same_size]


def test_resuming_from_the_iterator_state_continues_bit_exactly():
  full = list(_train())
  iterator = iter(_train())
  head = [next(iterator) for _ in range(5)]
  state = iterator.get_state()
  resumed = list(pipeline.iterate(_train(), state))
  for got, want in zip(head + resumed, full, strict=True):
    np.testing.assert_array_equal(got["image"], want["image"])
    np.testing.assert_array_equal(got["image2"], want["image2"])


def test_process_slices_concatenate_to_the_single_process_batch():
  single = list(_train(g=8, n2=19, steps=5))
  parts = [list(_train(g=8, n2=19, steps=5, sharding=pipeline.Sharding(p, 2))) for p in range(2)]
  for step in range(5):
    assert _ids(parts[0][step]["image2"]) + _ids(parts[1][step]["image2"]) == _ids(single[step]["image2"])


def test_evaluation_reads_both_splits_in_order_over_the_longer_one():
  source, spec = _split("testA", 7, 0)
  batches = list(pipeline.eval_dataset(source, spec, 5, second=_split("testB", 12, 1000)))
  assert len(batches) == 3  # ceil(12 / 5)
  mask = np.concatenate([b["mask"] for b in batches])
  mask2 = np.concatenate([b["mask2"] for b in batches])
  assert mask.tolist() == [True] * 7 + [False] * 8 and mask2.tolist() == [True] * 12 + [False] * 3
  ids2 = np.concatenate([b["image2"][:, 0, 0, 0] for b in batches])
  assert ids2[mask2].tolist() == list(range(1000, 1012))
  ids = np.concatenate([b["image"][:, 0, 0, 0] for b in batches])
  assert ids[mask].tolist() == list(range(7))


def test_second_split_is_resized_on_the_host_like_the_first():
  n = 6
  source = sources.ArraySource({"image": np.zeros((n, 6, 8, 3), np.uint8)})
  source2 = sources.ArraySource({"image": np.full((n, 5, 7, 3), 9, np.uint8)})
  spec = make_spec("toy", "trainA", n, {"image": Feature("image", (0, 0, 3), "uint8")})
  spec2 = make_spec("toy", "trainB", n, {"image": Feature("image", (0, 0, 3), "uint8")})
  batch = next(iter(pipeline.train_dataset(source, spec, 2, 1, 0, image_size=4, second=(source2, spec2))))
  assert batch["image"].shape == (2, 4, 4, 3) and batch["image2"].shape == (2, 4, 4, 3)
  assert (batch["image2"] == 9).all()


def test_paired_spec_adds_image2_and_refuses_an_already_paired_split():
  _, spec = _split("trainA", 4, 0, (6, 6, 3))
  _, spec2 = _split("trainB", 9, 0, (5, 5, 3))
  paired = pipeline.paired_spec(spec, spec2)
  assert paired.features["image2"] == Feature("image", (5, 5, 3), "int32")
  assert paired.extra_features == {"image2": (5, 5, 3)} and paired.num_examples == 4
  with pytest.raises(ConfigError, match="already pairs"):
    pipeline.paired_spec(paired, spec2)


def test_second_split_smaller_than_a_batch_is_refused():
  with pytest.raises(DataError, match="fewer than one batch"):
    _train(n2=3, g=5)
