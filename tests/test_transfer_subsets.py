"""Class / few-shot subsets: exact counts, determinism, label renumbering, checked against the raw digit arrays."""

import numpy as np
import pytest

from vision_jax.data.features import DatasetSpec, Feature, make_spec
from vision_jax.configs import common
from vision_jax.data import datasets, embedded_mnist, subsets
from vision_jax.errors import ConfigError, DataError

CLASSES = (5, 6, 7, 8, 9)


@pytest.fixture(scope="module")
def raw():
  """{split: {image bytes: original label}} from the vendored arrays (TFDS stores the records shuffled)."""
  images, labels = embedded_mnist.load_arrays()
  n = embedded_mnist.NUM_TRAIN
  return {split: {im.tobytes(): int(l) for im, l in zip(images[sl], labels[sl])}
          for split, sl in (("train", slice(0, n)), ("test", slice(n, None)))}


def _subset(data_dir, split, per_class, seed=0):
  cfg = common.base_config().dataset
  cfg.classes, cfg.examples_per_class, cfg.subset_seed = "5,6,7,8,9", per_class, seed
  source, spec = datasets.load("mnist_embedded", split, data_dir)
  return subsets.from_config(cfg, source, spec, train=split == "train")


def _read_all(source):
  records = source.__getitems__(list(range(len(source))))
  return [r["image"][..., 0].tobytes() for r in records], np.array([r["label"] for r in records])


def test_few_shot_train_subset(data_dir, raw):
  source, spec = _subset(data_dir, "train", 50)
  assert spec.num_examples == len(source) == 250
  assert spec.num_classes == 5 and spec.class_names == ("5", "6", "7", "8", "9")
  images, new_labels = _read_all(source)
  np.testing.assert_array_equal(np.bincount(new_labels, minlength=5), [50] * 5)
  # Every example is a training digit whose original label is the new one renumbered back (0..4 -> 5..9).
  assert [raw["train"][im] for im in images] == [CLASSES[l] for l in new_labels]
  assert len(set(images)) == 250 and source[7]["label"] == new_labels[7]


def test_draw_is_deterministic_by_subset_seed(data_dir):
  a, _ = _subset(data_dir, "train", 50, seed=0)
  b, _ = _subset(data_dir, "train", 50, seed=0)
  c, _ = _subset(data_dir, "train", 50, seed=1)
  np.testing.assert_array_equal(a.indices, b.indices)
  assert len(set(a.indices.tolist()) & set(c.indices.tolist())) < 125


def test_eval_split_keeps_every_example_of_the_classes(data_dir, raw):
  source, spec = _subset(data_dir, "test", 50)  # examples_per_class applies to training only
  images, new_labels = _read_all(source)
  expected = {im: l for im, l in raw["test"].items() if l in CLASSES}
  assert spec.num_examples == len(images) == len(expected) == 957
  assert {im: CLASSES[l] for im, l in zip(images, new_labels)} == expected


def test_unset_config_leaves_the_split_alone():
  cfg = common.base_config().dataset
  source, spec = [{"image": np.zeros((2, 2, 1)), "label": 0}], object()
  assert subsets.from_config(cfg, source, spec, train=True) == (source, spec)


def test_bad_subsets_are_one_line_errors():
  spec = DatasetSpec("toy", "train", 6, (2, 2, 1), 3, ("a", "b", "c"))
  source = [{"image": np.zeros((2, 2, 1), np.uint8), "label": i % 3} for i in range(6)]
  with pytest.raises(ConfigError, match="comma list"):
    subsets.parse_classes("1,x", 3)
  with pytest.raises(ConfigError, match="distinct class indices in 0..2"):
    subsets.parse_classes("1,3", 3)
  with pytest.raises(DataError, match="2 examples of class 1, fewer than"):
    subsets.select(source, spec, (1, 2), examples_per_class=3)
  sub, sub_spec = subsets.select(source, spec, (2, 0), examples_per_class=2)
  assert sub_spec.class_names == ("c", "a") and sorted(r["label"] for r in sub.__getitems__(range(4))) == [0, 0, 1, 1]


def test_class_slices_like_tfds_splits():
  assert subsets.parse_classes(":80%", 12) == tuple(range(9)) and subsets.parse_classes("80%:", 12) == (9, 10, 11)
  assert subsets.parse_classes("3:5", 12) == (3, 4) and subsets.parse_classes("10:", 12) == (10, 11)
  assert subsets.parse_classes(":", 3) == (0, 1, 2) and subsets.parse_classes("0:99", 3) == (0, 1, 2)
  assert subsets.parse_classes(" 5 , 6 ", 7) == (5, 6)
  with pytest.raises(ConfigError, match="selects none of the 12 classes"):
    subsets.parse_classes("80%:10%", 12)
  with pytest.raises(ConfigError, match="over 100%"):
    subsets.parse_classes(":120%", 12)


def test_subsets_of_an_identity_and_of_nothing():
  identity = Feature("identity", (), "int32", 3, ("ann", "bob", "cy"))
  spec = make_spec("faces", "train", 6, {"image": Feature("image", (2, 2, 1), "uint8"), "identity": identity},
                   label_key="")
  source = [{"image": np.zeros((2, 2, 1), np.uint8), "identity": i % 3} for i in range(6)]
  sub, sub_spec = subsets.select(source, spec, subsets.parse_classes("1:", 3))
  assert [int(r["identity"]) for r in sub.__getitems__(range(4))] == [0, 1, 0, 1]
  assert sub_spec.features["identity"].class_names == ("bob", "cy") and sub_spec.num_examples == 4
  unlabelled = make_spec("pictures", "train", 6, {"image": Feature("image", (2, 2, 1), "uint8")}, label_key="")
  with pytest.raises(DataError, match="no class labels or identities to choose from"):
    subsets.select(source, unlabelled, (0,))
