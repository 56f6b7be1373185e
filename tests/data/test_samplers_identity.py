"""Label-based samplers group a split without class labels by its `identity` feature (faces: the person)."""

import numpy as np
import pytest

from vision_jax.data import pipeline, samplers, sources
from vision_jax.data.features import Feature, make_spec
from vision_jax.errors import DataError

IDENTITY_COUNTS = (5, 4, 6, 2, 4)  # images per person; person 3 has fewer than K = 4


def _faces(counts=IDENTITY_COUNTS, with_identity=True):
  """A tiny in-memory split without a `label`: pixels hold the example index, `identity` the person."""
  identities = np.random.default_rng(1).permutation(np.repeat(np.arange(len(counts)), counts)).astype(np.int32)
  n = len(identities)
  arrays = {"image": np.arange(n, dtype=np.int32).reshape(n, 1, 1, 1)}
  features = {"image": Feature("image", (1, 1, 1), "int32")}
  if with_identity:
    arrays["identity"] = identities
    features["identity"] = Feature("identity", (), "int32")
  return sources.ArraySource(arrays), make_spec("faces", "train", n, features), identities


def test_balanced_batches_group_examples_by_identity():
  source, spec, identities = _faces()
  assert not spec.label_key and samplers.grouping_key(spec) == "identity"
  np.testing.assert_array_equal(samplers.split_labels(source, spec), identities)
  batches = list(pipeline.train_dataset(source, spec, 12, 5, 3, sampler=samplers.Balanced(examples_per_class=4)))
  for batch in batches:
    ids = batch["image"].reshape(3, 4)
    people = identities[ids]  # the person of each drawn example, looked up independently of the sampler
    assert (people == people[:, :1]).all() and len(set(people[:, 0])) == 3
    np.testing.assert_array_equal(batch["identity"].reshape(3, 4), people)  # the batch carries the identities
    for group_ids, person in zip(ids, people[:, 0]):
      if IDENTITY_COUNTS[person] >= 4:
        assert len(set(group_ids)) == 4  # without replacement where the person has enough images


def test_pairs_flag_same_identity():
  source, spec, identities = _faces()
  drawn = samplers.Pairs(positive_fraction=0.5).draw(0, 0, 10, samplers.ClassIndex(len(identities), identities))
  same = identities[drawn["index"]] == identities[drawn["index2"]]
  np.testing.assert_array_equal(drawn["same"], same.astype(np.int32))
  assert same.sum() == 5


def test_pair_batches_carry_the_partners_identity_as_label2():
  source, spec, identities = _faces()
  batch = next(iter(pipeline.train_dataset(source, spec, 10, 1, 0, sampler=samplers.Pairs(positive_fraction=0.5))))
  first, second = batch["image"].reshape(-1), batch["image2"].reshape(-1)  # pixels hold the example index
  np.testing.assert_array_equal(batch["label2"], identities[second])
  np.testing.assert_array_equal(batch["same"], (identities[first] == identities[second]).astype(np.int32))


def test_split_without_labels_or_identities_is_refused():
  source, spec, _ = _faces(with_identity=False)
  assert samplers.grouping_key(spec) == ""
  with pytest.raises(DataError, match="no class labels or identities"):
    samplers.split_labels(source, spec)
