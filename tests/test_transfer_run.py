"""configs/transfer_digits.py end to end: pretrain on digits 0-4, then train a new head on 5-9 from its checkpoint
(a few steps each, in-process, with the config loaded as `vision_jax.main` loads it)."""

import os

import numpy as np
import pytest

from vision_jax import config_loading, train
from vision_jax.train_lib.checkpoint import load_state_arrays
from vision_jax.data import embedded_mnist

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "transfer_digits.py")


def _config(data_dir, arg, steps=6):
  config = config_loading.load_config(f"{CONFIG}:{arg},smoke")
  config.dataset.data_dir = data_dir
  config.num_train_steps = config.eval_every_steps = config.checkpoint.every_steps = steps
  return config


@pytest.fixture(scope="module")
def pretrained(data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("pretrain"))
  summary = train.train_and_evaluate(_config(data_dir, "regime=pretrain"), workdir)
  return workdir, summary


def _test_count(classes):
  _, labels = embedded_mnist.load_arrays()
  return int(np.isin(labels[embedded_mnist.NUM_TRAIN:], classes).sum())


def test_pretrain_then_new_head(pretrained, data_dir, tmp_path, capsys):
  pre_dir, pre_summary = pretrained
  assert pre_summary["final_eval"]["num_examples"] == _test_count([0, 1, 2, 3, 4])
  summary = train.train_and_evaluate(_config(data_dir, f"regime=head,pretrained={pre_dir}"), str(tmp_path))
  assert summary["steps"] == 6 and summary["final_eval"]["num_examples"] == _test_count([5, 6, 7, 8, 9])
  log = capsys.readouterr().out
  assert f"transfer: loaded 8 arrays from {pre_dir}/best (step 6); re-initialized params/logits/" in log
  before = load_state_arrays(pre_dir, which="best")["params"]["model"]
  after = load_state_arrays(str(tmp_path))["params"]["model"]
  for name in ("conv1", "conv2", "conv3", "fc4"):  # frozen: exactly the pretrained weights
    for leaf in ("kernel", "bias"):
      np.testing.assert_array_equal(after[name][leaf], before[name][leaf])
  assert not np.allclose(after["logits"]["kernel"], before["logits"]["kernel"])

