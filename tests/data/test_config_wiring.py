"""The data options of a config reach the loop's batches: samplers, letterboxing with boxes, unlabelled data."""

import numpy as np
import pytest

from vision_jax import config_loading
from vision_jax.data import datasets, pipeline
from vision_jax.errors import ConfigError
from vision_jax.train_lib import setup as setup_lib


def _setup(data_dir, tmp_path, **input_options):
  config = config_loading.load_config("configs/mnist_lenet.py:smoke")
  config.dataset.data_dir = data_dir
  config.input.update(input_options)
  return setup_lib.setup(config, str(tmp_path))


def _first_batch(s):
  local, _ = setup_lib.train_batches(s)
  return next(local)


def test_pairs_sampler_from_the_config(data_dir, tmp_path):
  s = _setup(data_dir, tmp_path, sampler="pairs", positive_fraction=0.25, batch_size=32)
  batch = _first_batch(s)
  assert batch["image2"].shape == batch["image"].shape == (32, 28, 28, 1)
  np.testing.assert_array_equal(batch["same"], batch["label"] == batch["label2"])
  assert batch["same"].sum() == 8  # round(0.25 * 32)


def test_balanced_sampler_from_the_config(data_dir, tmp_path):
  s = _setup(data_dir, tmp_path, sampler="balanced", examples_per_class=4, batch_size=32)
  labels = _first_batch(s)["label"]
  classes, counts = np.unique(labels, return_counts=True)
  assert len(classes) == 8 and (counts == 4).all()


def test_unknown_sampler_and_resize_are_one_line_errors(data_dir, tmp_path):
  with pytest.raises(ConfigError, match="unknown sampler 'triplets'"):
    _setup(data_dir, tmp_path, sampler="triplets")
  with pytest.raises(ConfigError, match="input.resize='stretch'; use center_crop or letterbox"):
    _setup(data_dir, tmp_path, image_size=32, resize="stretch")


def test_letterboxed_scenes_move_their_boxes(tmp_path):
  config = config_loading.load_config("configs/mnist_lenet.py:smoke")
  config.dataset.name = "digit_scenes"
  config.input.update(image_size=48, resize="letterbox")
  source, spec = datasets.load("digit_scenes", "train")
  resized = setup_lib.resized_spec(spec, 48, "letterbox")
  assert resized.image_shape == (48, 48, 1) and "resize_info" in resized.extra_features
  assert resized.features["instance_masks"].shape == (6, 48, 48)
  batch = next(iter(pipeline.eval_dataset(source, resized, 4, image_size=48, resize="letterbox")))
  stored = np.stack([source[i]["boxes"] for i in range(4)])
  np.testing.assert_allclose(batch["boxes"], stored * 0.5, atol=1e-4)  # 96 -> 48: every coordinate halves
  np.testing.assert_allclose(batch["resize_info"][0], [0.5, 0.5, 0.0, 0.0])
  with pytest.raises(ConfigError, match="task 'classification' needs class labels; dataset 'digit_scenes'"):
    setup_lib.setup(config, str(tmp_path))  # a detection dataset under a classifier: one line, not a KeyError
