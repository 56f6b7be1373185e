"""The model switches through configs: `--config.model.*` overrides reach the task's model; one main run."""

import json
import math
import os

import jax
import numpy as np
import pytest

from vision_jax import config_loading, tasks
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(REPO, "configs", "digits.py")
SWITCHES = ["--config.model.activation=prelu", "--config.model.kernel_init=he_uniform"]


def _task(arg, overrides):
  config = config_loading.load_config(f"{DIGITS}:{arg}")
  for text in overrides:
    key, _, value = text[len(config_loading.OVERRIDE_PREFIX):].partition("=")
    config_loading.apply_override(config, key, value)
  return tasks.get(config, DatasetSpec("mnist_embedded", "train", 8000, (28, 28, 1), 10, tuple("0123456789")))


def test_config_switches_reach_the_task_model():
  task = _task("model=simple_cnn", SWITCHES + ["--config.model.batch_norm=on", "--config.model.dropout=0.2"])
  variables = jax.eval_shape(task.init_variables, jax.random.key(0))["model"]
  params = variables["params"]
  # Digits padded to 32x32x1: conv1 sees one channel; a PReLU after each conv and the hidden dense layer.
  assert params["conv1"]["kernel"].shape == (3, 3, 1, 32)
  assert sorted(k for k in params if k.startswith("PReLU")) == [f"PReLU_{i}" for i in range(5)]
  assert {"conv1_bn", "fc_bn"} <= set(variables["batch_stats"])
  assert task.model.dropout == 0.2


def test_config_initializer_values():
  task = _task("model=simple_cnn", ["--config.model.kernel_init=he_uniform", "--config.model.bias_init=ones"])
  params = jax.jit(task.init_variables)(jax.random.key(0))["model"]["params"]
  for name, p in params.items():
    kernel = np.asarray(p["kernel"])
    assert np.abs(kernel).max() <= math.sqrt(6 / math.prod(kernel.shape[:-1])), name
    assert np.all(np.asarray(p["bias"]) == 1.0), name


def test_config_defaults_leave_the_model_alone():
  task = _task("model=resnet18_cifar", [])
  assert type(task.model).__name__ == "ResNet"


@pytest.mark.parametrize("override,message", [("--config.model.activation=swishy", "unknown activation 'swishy'"),
                                              ("--config.model.dropout=2", "not a rate in [0, 1)")])
def test_bad_config_switch_is_a_config_error(override, message):
  with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
    _task("model=simple_cnn", [override])


@pytest.mark.slow
def test_main_trains_simple_cnn_with_prelu_and_he_uniform(data_dir, tmp_path):
  from tests.training import harness  # pylint: disable=import-outside-toplevel
  result = harness.run_main(data_dir, f"--config={DIGITS}:model=simple_cnn,smoke", *SWITCHES,
                            f"--workdir={tmp_path}", timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.load(open(os.path.join(tmp_path, "summary.json")))
  assert summary["steps"] == 20 and np.isfinite(summary["final_eval"]["loss"])
  slopes = harness.final_params(str(tmp_path))["params"]["PReLU_0"]["slope"]
  assert slopes.shape == (32,) and np.any(slopes != np.float32(0.25))  # the slopes were trained
