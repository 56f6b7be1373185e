"""The multi-head task: per-head losses and their weighted sum against a float64 NumPy reference worked from the
definitions, the train/eval step wiring, padded evaluation, the histogram AUC, and config errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vision_jax import tasks
from vision_jax.configs import multi_io_digits
from vision_jax.data import datasets, pipeline
from vision_jax.errors import ConfigError
from vision_jax.evaluation import binary
from vision_jax.tasks import multi_head
from vision_jax.train_lib.state import TrainState

HEADS = (multi_head.Head("total", "regression", "value", 0.25),
         multi_head.Head("kind", "multiclass", "label", 1.5, num_classes=3),
         multi_head.Head("flag", "binary", "flag", 2.0))


def _reference_losses(outputs, targets):
  """float64 losses from the definitions: squared error, -log softmax, -[y log s + (1 - y) log(1 - s)]."""
  o = {k: np.asarray(v, np.float64) for k, v in outputs.items()}
  z = o["kind"]
  log_softmax = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
  s = 1.0 / (1.0 + np.exp(-o["flag"][:, 0]))
  y = np.asarray(targets["flag"], np.float64)
  return {"total": (o["total"][:, 0] - np.asarray(targets["value"], np.float64)) ** 2,
          "kind": -log_softmax[np.arange(len(z)), np.asarray(targets["label"])],
          "flag": -(y * np.log(s) + (1 - y) * np.log(1 - s))}


def test_head_losses_and_weighted_total_match_the_definitions():
  rng = np.random.default_rng(0)
  n = 6
  outputs = {"total": rng.normal(size=(n, 1)) * 3, "kind": rng.normal(size=(n, 3)) * 2,
             "flag": rng.normal(size=(n, 1)) * 2}
  targets = {"value": rng.uniform(0, 18, n).astype(np.float32), "label": rng.integers(0, 3, n),
             "flag": rng.integers(0, 2, n)}
  losses = multi_head.head_losses({k: jnp.asarray(v, jnp.float32) for k, v in outputs.items()},
                                  {k: jnp.asarray(v) for k, v in targets.items()}, HEADS)
  want = _reference_losses(outputs, targets)
  for name in want:
    np.testing.assert_allclose(losses[name], want[name], rtol=1e-5, atol=1e-6)
  total = float(jnp.mean(multi_head.weighted_loss(losses, HEADS)))
  assert total == pytest.approx(0.25 * want["total"].mean() + 1.5 * want["kind"].mean() + 2.0 * want["flag"].mean(),
                                rel=1e-5)


def _exact_auc(scores, targets):
  pos, neg = scores[targets == 1], scores[targets == 0]
  wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
  return wins / (len(pos) * len(neg))


def test_histogram_auc_equals_the_pairwise_definition():
  rng = np.random.default_rng(1)
  targets = rng.integers(0, 2, 300)
  # Probabilities on bin centres (many ties) make the histogram AUC exact; raw logits agree to the bin width.
  probs = (rng.integers(0, 20, 300) + 0.5) / 20
  logits = np.log(probs / (1 - probs))
  pos, neg = binary.score_histograms(jnp.asarray(logits, jnp.float32), jnp.asarray(targets), jnp.ones(300), bins=20)
  assert binary.auc_from_histograms(pos, neg) == pytest.approx(_exact_auc(probs, targets), abs=1e-12)
  raw = rng.normal(size=300) + targets
  pos, neg = binary.score_histograms(jnp.asarray(raw, jnp.float32), jnp.asarray(targets), jnp.ones(300))
  assert binary.auc_from_histograms(pos, neg) == pytest.approx(_exact_auc(raw, targets), abs=2e-3)
  assert np.isnan(binary.auc_from_histograms(np.ones(4), np.zeros(4)))


@pytest.fixture(scope="module")
def task():
  config = multi_io_digits.get_config("sum_weight=0.1,digit_weight=1.0,same_weight=2.0")
  config.model.dropout = 0.0  # deterministic training-mode outputs (the model section's dropout switch)
  config.input.augment = ""
  _, spec = datasets.load("mnist_pairs", "test")
  return tasks.get(config, spec)


@pytest.fixture(scope="module")
def eval_batch():
  source, spec = datasets.load("mnist_pairs", "test")
  # 32 rows, the last 7 padding (they repeat example 0 and must not count).
  batch = next(iter(pipeline.eval_dataset(source, dataclasses.replace(spec, num_examples=25), 32)))
  return {k: jnp.asarray(v) for k, v in batch.items()}


@pytest.fixture(scope="module")
def state(task):
  return TrainState.create(jax.jit(task.init_variables)(jax.random.PRNGKey(0)), {"model": optax.sgd(0.0)},
                           jax.random.PRNGKey(1))


def _outputs(task, state, batch):
  """Evaluation-mode outputs of the un-augmented batch, as float64 NumPy arrays."""
  fn = jax.jit(lambda v, b: task.outputs(v, task.prepare_inputs(jax.random.PRNGKey(0), b, train=False)))
  return {k: np.asarray(v, np.float64) for k, v in fn(state.variables("model"), batch).items()}


def test_train_step_reports_the_weighted_loss_of_its_heads(task, eval_batch, state):
  batch = {k: v[:25] for k, v in eval_batch.items() if k != "mask"}
  outputs = _outputs(task, state, batch)
  names = {"digit_sum": "total", "first_digit": "kind", "same_digit": "flag"}
  want = _reference_losses({names[k]: v for k, v in outputs.items()},
                           {"value": batch["digit_sum"], "label": batch["label"], "flag": batch["same"]})
  _, metrics = jax.jit(lambda s, b: task.train_step(s, b, {"model": optax.sgd(0.0)}))(state, batch)
  assert [h.weight for h in task.heads] == [0.1, 1.0, 2.0]
  assert float(metrics["loss"]) == pytest.approx(
      0.1 * want["total"].mean() + want["kind"].mean() + 2.0 * want["flag"].mean(), rel=1e-4)
  assert float(metrics["same_digit_loss"]) == pytest.approx(want["flag"].mean(), rel=1e-4)
  assert float(metrics["digit_sum_mae"]) == pytest.approx(
      np.mean(np.abs(outputs["digit_sum"][:, 0] - np.asarray(batch["digit_sum"]))), rel=1e-4)


def test_padded_evaluation_counts_only_real_examples(task, eval_batch, state):
  metrics = task.reduce_eval(jax.tree.map(np.asarray, jax.jit(task.eval_step)(state, eval_batch)))
  real = {k: np.asarray(v[:25]) for k, v in eval_batch.items()}
  outputs = {k: v[:25] for k, v in _outputs(task, state, eval_batch).items()}
  assert metrics["num_examples"] == 25
  assert metrics["digit_sum_mae"] == pytest.approx(np.mean(np.abs(outputs["digit_sum"][:, 0] - real["digit_sum"])),
                                                   rel=1e-4)
  assert metrics["first_digit_accuracy"] == pytest.approx(np.mean(outputs["first_digit"].argmax(1) == real["label"]))
  assert metrics["same_digit_accuracy"] == pytest.approx(np.mean((outputs["same_digit"][:, 0] > 0) == real["same"]))
  assert metrics["same_digit_auc"] == pytest.approx(_exact_auc(outputs["same_digit"][:, 0], real["same"]), abs=0.02)
  assert metrics["confusion"].sum() == 25 and np.trace(metrics["confusion"]) == round(
      25 * metrics["first_digit_accuracy"])


@pytest.mark.parametrize("path,value,message", [
    ("heads.same_digit.kind", "ordinal", "heads.same_digit.kind='ordinal' is unknown"),
    ("heads.same_digit.target", "colour", "heads.same_digit.target='colour' is not a feature of dataset"),
    ("heads.digit_sum.weight", -1.0, "weight=-1.0 is negative"),
    ("model.inputs", "image,image3", "model.inputs names 'image3'"),
])
def test_config_mistakes_are_one_line_errors(path, value, message):
  config = multi_io_digits.get_config()
  section, key = path.rsplit(".", 1)
  config_section = config
  for part in section.split("."):
    config_section = config_section[part]
  config_section[key] = value
  _, spec = datasets.load("mnist_pairs", "test")
  with pytest.raises(ConfigError, match=message):
    tasks.get(config, spec)
