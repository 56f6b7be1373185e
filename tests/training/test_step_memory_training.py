"""Item 3 of the training craft on real models: gradient accumulation, bf16 compute, rematerialization."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vision_jax.train_lib import optim
from vision_jax.configs import common
from vision_jax.data.features import DatasetSpec
from vision_jax.tasks.classification import ClassificationTask
from vision_jax.train_lib.state import TrainState


def _run(model: str, steps: int = 3, batch: int = 32, **train_keys):
  config = common.base_config()
  config.model.name = model
  config.optimizer.name = "sgd"
  for key, value in train_keys.items():
    config.train[key] = value
  spec = DatasetSpec("synthetic", "train", batch, (28, 28, 1), 10, tuple("0123456789"))
  task = ClassificationTask(config, spec)
  tx = optim.make_optimizer(config.optimizer, optax.constant_schedule(0.05))
  rng = jax.random.PRNGKey(0)
  state = TrainState.create(task.init_variables(rng), {"model": tx}, rng)
  data = np.random.default_rng(0)
  step = jax.jit(lambda s, b: task.train_step(s, b, txs={"model": tx}))
  losses = []
  for _ in range(steps):
    images = data.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8)
    state, metrics = step(state, {"image": images, "label": data.integers(0, 10, batch).astype(np.int32)})
    losses.append(float(metrics["loss"]))
  return state, losses


def _max_relative_difference(a, b):
  return max(float(jnp.max(jnp.abs(x - y)) / (jnp.max(jnp.abs(y)) + 1e-12))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def big_batch_run():
  return _run("lenet5_relu")


@pytest.mark.parametrize("k", [2, 4])
def test_gradient_accumulation_gives_the_big_batch_update(big_batch_run, k):
  state, losses = _run("lenet5_relu", grad_accum_steps=k)
  reference, reference_losses = big_batch_run
  assert _max_relative_difference(state.params, reference.params) < 1e-5
  np.testing.assert_allclose(losses, reference_losses, rtol=1e-5)


def test_remat_gives_the_same_update(big_batch_run):
  state, _ = _run("lenet5_relu", remat="full")
  assert _max_relative_difference(state.params, big_batch_run[0].params) < 1e-5


def test_bf16_compute_keeps_float32_parameters_and_trains(big_batch_run):
  state, losses = _run("lenet5_relu", compute_dtype="bfloat16")
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.params))
  assert all(np.isfinite(losses))
  # The first loss is computed before any update: bf16 (8 significant bits) must agree with float32 closely.
  np.testing.assert_allclose(losses[0], big_batch_run[1][0], rtol=2e-2)
  assert losses[0] != big_batch_run[1][0]  # and it really was computed in lower precision


def test_bf16_compute_runs_the_model_in_bf16():
  config = common.base_config()
  config.train.compute_dtype = "bfloat16"
  task = ClassificationTask(config, DatasetSpec("synthetic", "train", 8, (28, 28, 1), 10, tuple("0123456789")))
  variables = task.init_variables(jax.random.PRNGKey(0))["model"]
  assert task.model.apply(variables, jnp.zeros((2, 28, 28, 1)), train=False).dtype == jnp.bfloat16
