"""Classification of signals and volumes: elementwise input ops against NumPy, one-line errors for image ops,
and real train and eval steps of the 1D and 3D configs' task on tiny batches."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vision_jax.data.features import DatasetSpec
from vision_jax import config_loading, tasks
from vision_jax.data import datasets
from vision_jax.errors import ConfigError
from vision_jax.tasks.array_classification import ArrayClassificationTask
from vision_jax.train_lib.state import TrainState

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")


def _task(name, **input_ops):
  config = config_loading.load_config(os.path.join(CONFIGS, f"{name}.py"))
  config.model.kwargs.widths = (4, 8)
  config.input.update(input_ops)
  _, spec = datasets.load(config.dataset.name, "test")
  return tasks.get(config, spec), spec


def test_signals_and_volumes_get_the_array_task_with_elementwise_ops():
  task, spec = _task("volumes3d", preprocess="to_float", normalize="normalize(mean=0.25, std=0.5)")
  assert isinstance(task, ArrayClassificationTask) and task.input_shape() == spec.image_shape
  x = np.random.default_rng(0).integers(0, 256, (3,) + spec.image_shape).astype(np.uint8)
  got = task.prepare_images(jax.random.PRNGKey(0), jnp.asarray(x), train=True)
  np.testing.assert_allclose(got, (x / 255.0 - 0.25) / 0.5, rtol=1e-5, atol=1e-6)
  images = DatasetSpec("digits", "train", 10, (28, 28, 1), 10, tuple("0123456789"))
  assert type(tasks.get(config_loading.load_config(os.path.join(CONFIGS, "mnist_lenet.py")), images)) is (
      tasks.classification.ClassificationTask)


def test_image_ops_on_signals_are_one_line_errors():
  with pytest.raises(ConfigError, match="input.augment='flip_lr' holds image ops.*signals of dataset 'synthetic_ecg'"):
    _task("ecg1d", augment="flip_lr")
  task, _ = _task("ecg1d", preprocess="pad(to=2000)")
  with pytest.raises(ConfigError, match="changed the size of the signals; only elementwise ops"):
    task.input_shape()


@pytest.mark.parametrize("name", ["ecg1d", "volumes3d"])
def test_train_and_eval_steps_run_on_a_tiny_batch(name):
  task, spec = _task(name)
  source, _ = datasets.load(spec.name, "test")
  batch = {"image": jnp.asarray(source.arrays[spec.image_key][:8]), "label": jnp.asarray(source.arrays["label"][:8])}
  tx = optax.adam(1e-2)
  state = TrainState.create(jax.jit(task.init_variables)(jax.random.PRNGKey(0)), {"model": tx}, jax.random.PRNGKey(1))
  step = jax.jit(lambda s, b: task.train_step(s, b, {"model": tx}))
  state, first = step(state, batch)
  for _ in range(4):
    state, metrics = step(state, batch)
  assert np.isfinite(float(first["loss"])) and float(metrics["loss"]) < float(first["loss"])
  sums = jax.jit(task.eval_step)(state, {**batch, "mask": jnp.arange(8) < 6})
  result = task.reduce_eval(jax.tree.map(np.asarray, sums))
  assert result["num_examples"] == 6 and result["confusion"].sum() == 6
