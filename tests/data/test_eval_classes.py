"""`dataset.eval_classes`: the evaluation split gets its own classes while the training split keeps
`dataset.classes` (metric learning on held-out classes)."""

import numpy as np
import pytest

from vision_jax.configs import common
from vision_jax.data import subsets
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError

NAMES = tuple("abcdef")


def _split(name):
  labels = np.arange(12) % 6  # example i has class i % 6
  spec = DatasetSpec("toy", name, 12, (1, 1, 1), 6, NAMES)
  return [{"image": np.full((1, 1, 1), i, np.uint8), "label": int(l)} for i, l in enumerate(labels)], spec


def _dataset_config(classes="", eval_classes="", per_class=0):
  cfg = common.base_config().dataset
  cfg.classes, cfg.examples_per_class = classes, per_class
  cfg.eval_classes = eval_classes
  return cfg


def _ids_and_labels(source):
  return [int(source[i]["image"][0, 0, 0]) for i in range(len(source))], [int(source[i]["label"]) for i in
                                                                         range(len(source))]


def test_training_split_keeps_classes_and_evaluation_split_takes_eval_classes():
  cfg = _dataset_config(classes="0,1,2", eval_classes="5,3", per_class=1)
  train, train_spec = subsets.from_config(cfg, *_split("train"), train=True)
  evaluation, eval_spec = subsets.from_config(cfg, *_split("test"), train=False)
  ids, labels = _ids_and_labels(train)
  assert train_spec.class_names == ("a", "b", "c") and sorted(i % 6 for i in ids) == [0, 1, 2]  # one per class
  assert labels == [i % 6 for i in ids]
  ids, labels = _ids_and_labels(evaluation)
  # Every example of classes 5 and 3 (ids 3, 5, 9, 11), renumbered in the order given: 5 -> 0, 3 -> 1.
  assert ids == [3, 5, 9, 11] and labels == [1, 0, 1, 0]
  assert eval_spec.num_classes == 2 and eval_spec.class_names == ("f", "d") and eval_spec.num_examples == 4


def test_eval_classes_alone_leave_the_training_split_whole():
  cfg = _dataset_config(eval_classes="4")
  source, spec = _split("train")
  assert subsets.from_config(cfg, source, spec, train=True) == (source, spec)
  evaluation, _ = subsets.from_config(cfg, *_split("test"), train=False)
  assert _ids_and_labels(evaluation) == ([4, 10], [0, 0])


def test_bad_eval_classes_name_their_setting():
  with pytest.raises(ConfigError, match=r"^dataset\.eval_classes='5,9' must list distinct class indices in 0\.\.5$"):
    subsets.from_config(_dataset_config(eval_classes="5,9"), *_split("test"), train=False)
