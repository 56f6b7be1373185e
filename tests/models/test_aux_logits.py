"""Auxiliary classifiers in the classification task: the optimized loss is main + 0.3 x each aux head's loss
(Szegedy et al., 2014), evaluation and the reported loss use the main head only.

A two-head linear model stands in for GoogLeNet so the reference is the closed-form gradient of softmax
cross-entropy in float64 NumPy: for logits x W + b, dCE/dW = x^T (softmax - onehot) / N.
"""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vision_jax import config_loading, tasks
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.tasks.classification import AUX_LOSS_WEIGHT
from vision_jax.train_lib.state import TrainState

DIGITS = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "configs", "digits.py")
NUM_CLASSES = 10


class TwoHeadLinear(nn.Module):
  """Flattened images -> (main logits, aux logits), two independent dense layers."""

  @nn.compact
  def __call__(self, x, train=False):
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(NUM_CLASSES, name="main")(x), nn.Dense(NUM_CLASSES, name="aux")(x)


def softmax_ce_grads(x, w, b, labels):
  """Float64 (loss, dW, db) of the mean softmax cross-entropy of x @ w + b."""
  z = x @ w + b
  p = np.exp(z - z.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  onehot = np.eye(NUM_CLASSES)[labels]
  loss = -np.mean(np.sum(onehot * np.log(p), -1))
  return loss, x.T @ (p - onehot) / len(x), np.mean(p - onehot, 0)


@pytest.fixture(scope="module")
def task():
  config = config_loading.load_config(f"{DIGITS}:model=googlenet,aux,smoke")
  assert config.model.kwargs.aux_logits
  config.input.augment = ""  # deterministic inputs: the test recomputes them
  spec = DatasetSpec("mnist_embedded", "train", 100, (28, 28, 1), NUM_CLASSES, tuple(map(str, range(10))))
  t = tasks.get(config, spec)
  t.model = TwoHeadLinear()
  return t


def test_aux_loss_weight_and_main_logits(task):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
  labels = rng.integers(0, NUM_CLASSES, 6).astype(np.int32)
  variables = task.init_variables(jax.random.PRNGKey(0))
  tx = optax.identity()  # the update is the gradient itself
  state = TrainState.create(variables, {"model": tx}, jax.random.PRNGKey(1))
  new_state, metrics = task.train_step(state, {"image": jnp.asarray(images), "label": jnp.asarray(labels)}, {"model": tx})

  x = np.asarray(task.prepare_images(jax.random.PRNGKey(0), jnp.asarray(images), False), np.float64)
  x = x.reshape(len(x), -1)
  params = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["model"]["params"])
  main_loss, dw_main, db_main = softmax_ce_grads(x, params["main"]["kernel"], params["main"]["bias"], labels)
  _, dw_aux, db_aux = softmax_ce_grads(x, params["aux"]["kernel"], params["aux"]["bias"], labels)
  delta = jax.tree.map(lambda new, old: np.asarray(new, np.float64) - old, new_state.params["model"], params)
  np.testing.assert_allclose(delta["main"]["kernel"], dw_main, atol=1e-5)
  np.testing.assert_allclose(delta["main"]["bias"], db_main, atol=1e-6)
  np.testing.assert_allclose(delta["aux"]["kernel"], AUX_LOSS_WEIGHT * dw_aux, atol=1e-5)
  np.testing.assert_allclose(delta["aux"]["bias"], AUX_LOSS_WEIGHT * db_aux, atol=1e-6)
  assert AUX_LOSS_WEIGHT == 0.3
  assert float(metrics["loss"]) == pytest.approx(main_loss, abs=1e-5)

  logits = task.logits(new_state, jnp.asarray(images))
  p = new_state.params["model"]["main"]
  np.testing.assert_allclose(logits, x @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"]),
                             rtol=1e-5, atol=1e-4)  # logits reach 500: float32 rounding is ~5e-4 there


def test_aux_switch_only_for_models_with_aux_heads():
  assert config_loading.load_config(f"{DIGITS}:model=inception_v3,aux").input.preprocess.endswith("pad(to=299)")
  assert "aux_logits" not in config_loading.load_config(f"{DIGITS}:model=resnet18").model.kwargs
  with pytest.raises(ConfigError, match="no auxiliary heads"):
    config_loading.load_config(f"{DIGITS}:model=resnet18,aux")
