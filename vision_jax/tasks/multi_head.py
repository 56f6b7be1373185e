"""Several inputs, several heads: per-head losses with loss weights, per-head metrics, and the step bodies.

A config selects it with `task = "multi_head"` and describes
  * `model.inputs`: the batch keys fed to the model, in order (e.g. "image,image2"); each is an image prepared
    by the input ops (`input.preprocess`, `input.augment`, `input.normalize`), augmented independently;
  * `heads.<name>`: `kind` ("regression", "multiclass" or "binary"), `target` (a batch key), `weight` (its
    loss weight) and, for multi-class heads, `num_classes` (0: the dataset's classes).
The model is built with `heads=((name, width), ...)` and returns {name: [N, width]}. The training loss is
sum_h weight_h * mean_n loss_h(n), with loss_h the squared error (regression), softmax cross-entropy
(multiclass) or sigmoid binary cross-entropy (binary) of head h.

Metrics: `loss` (the weighted total), `<head>_loss` for every head, and `<head>_mae` (regression),
`<head>_accuracy` (multiclass, binary) and, in evaluation, `<head>_auc` (binary). The confusion matrix of the
multi-class head whose target is the dataset's label is reported (and plotted) as `confusion`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax import plots
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation import binary as binary_metrics
from vision_jax.evaluation import classification as cls_metrics
from vision_jax.evaluation.evaluators import Evaluator, SumEvaluator
from vision_jax.losses.classification import binary_cross_entropy, cross_entropy, squared_error
from vision_jax.models import overrides
from vision_jax.tasks import base
from vision_jax.train_lib import step_memory
from vision_jax.train_lib.state import TrainState

KINDS = ("regression", "multiclass", "binary")


@dataclasses.dataclass(frozen=True)
class Head:
  """One output of a multi-head model.

  Attributes:
    name: the model output and metric prefix.
    kind: "regression" (squared error), "multiclass" (softmax cross-entropy) or "binary" (sigmoid BCE).
    target: the batch key holding the targets: float [N] values, int [N] classes or 0/1 [N].
    weight: the head's loss weight.
    num_classes: classes of a multi-class head (unused otherwise).
  """

  name: str
  kind: str
  target: str
  weight: float = 1.0
  num_classes: int = 0

  @property
  def width(self) -> int:
    """Outputs per example: the class count of a multi-class head, 1 otherwise."""
    return self.num_classes if self.kind == "multiclass" else 1


def head_losses(outputs: dict[str, jax.Array], targets: dict[str, jax.Array],
                heads: Sequence[Head]) -> dict[str, jax.Array]:
  """Per-example loss of every head.

  Args:
    outputs: head name -> [N, width] model outputs.
    targets: batch key -> [N] targets (each head reads `targets[head.target]`).
    heads: the heads.

  Returns:
    head name -> [N] float32 losses: (y_hat - y)^2, softmax cross-entropy, or sigmoid binary cross-entropy.
  """
  losses = {}
  for head in heads:
    out, y = outputs[head.name].astype(jnp.float32), targets[head.target]
    if head.kind == "regression":
      losses[head.name] = squared_error(out[:, 0], y)
    elif head.kind == "multiclass":
      losses[head.name] = cross_entropy(out, y)
    else:
      losses[head.name] = binary_cross_entropy(out[:, 0], y)
  return losses


def weighted_loss(losses: dict[str, jax.Array], heads: Sequence[Head]) -> jax.Array:
  """[N] per-example total sum_h weight_h * losses[h]; its batch mean is the training objective."""
  return sum(head.weight * losses[head.name] for head in heads)


def heads_from_config(config: ml_collections.ConfigDict, spec: DatasetSpec) -> tuple[Head, ...]:
  """The heads of `config.heads`, checked against the batch keys the dataset provides.

  Raises:
    ConfigError: no heads, an unknown kind, a negative weight, or a target the dataset does not have.
  """
  if not config.get("heads"):
    raise ConfigError("task 'multi_head' needs config.heads: one entry per head with kind, target and weight")
  available = ("label",) + tuple(spec.extra_features)
  heads = []
  for name, entry in config.heads.items():
    kind, target = entry.kind, entry.target
    if kind not in KINDS:
      raise ConfigError(f"heads.{name}.kind={kind!r} is unknown; use one of {', '.join(KINDS)}")
    if target not in available:
      raise ConfigError(f"heads.{name}.target={target!r} is not a feature of dataset {spec.name!r}; "
                        f"its targets are {', '.join(available)}")
    if entry.weight < 0:
      raise ConfigError(f"heads.{name}.weight={entry.weight} is negative; loss weights must be >= 0")
    num_classes = int(entry.get("num_classes", 0)) or (spec.num_classes if kind == "multiclass" else 0)
    heads.append(Head(name, kind, target, float(entry.weight), num_classes))
  return tuple(heads)


@base.register("multi_head")
class MultiHeadTask(base.Task):
  """Models with several image inputs and regression / multi-class / binary heads (see the module docstring).

  The model section's switches (activation, initializers, batch norm, dropout) and `train.compute_dtype`,
  `grad_accum_steps` and `remat` apply as for classifiers.

  Args:
    config: the experiment config (model, input, heads, train sections are read).
    spec: the training split's `DatasetSpec`.
  """

  best_metric = ("loss", "min")
  curve_metrics = None  # every head's loss and metric

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    self.heads = heads_from_config(config, spec)
    self.input_keys = tuple(k.strip() for k in config.model.get("inputs", "image").split(",") if k.strip())
    for key in self.input_keys:
      if key != "image" and key not in spec.extra_features:
        raise ConfigError(f"model.inputs names {key!r}, which dataset {spec.name!r} does not provide; its "
                          f"inputs are image, {', '.join(spec.extra_features)}")
    self.num_classes = spec.num_classes
    self.model = overrides.from_config(config.model, heads=tuple((h.name, h.width) for h in self.heads),
                                       **base.compute_dtype(config))
    self.grad_accum_steps = int(config.train.grad_accum_steps)
    step_memory.remat_policy(config.train.remat)  # a ConfigError now for an unknown policy name
    self.remat = config.train.remat
    self.input_ops = base.InputOps(config.input)
    label_heads = [h for h in self.heads if h.kind == "multiclass" and h.target == "label"]
    self._confusion_head = label_heads[0] if label_heads else None

  def networks(self):
    return {"model": self.model}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    return tuple(jnp.zeros((1,) + shape, jnp.float32) for shape in self.input_shapes())

  def identity(self) -> dict[str, Any]:
    return {"heads": [[h.name, h.kind, h.width] for h in self.heads]}

  @property
  def metric_names(self) -> tuple[str, ...]:
    """Scalar metrics reported by train steps (evaluation adds `<head>_auc` for binary heads)."""
    names = ["loss"]
    for head in self.heads:
      names += [f"{head.name}_loss", f"{head.name}_mae" if head.kind == "regression" else f"{head.name}_accuracy"]
    return tuple(names)

  def _stored_shape(self, key: str) -> tuple[int, ...]:
    return tuple(self.spec.image_shape if key == "image" else self.spec.extra_features[key])

  def prepare_inputs(self, rng: jax.Array, batch: dict[str, jax.Array], train: bool) -> list[jax.Array]:
    """The model's inputs from a batch: each input key through preprocess, augment (training), normalize."""
    return [self.input_ops(jax.random.fold_in(rng, i), batch[key], train) for i, key in enumerate(self.input_keys)]

  def input_shapes(self) -> list[tuple[int, ...]]:
    """Per-example shape of each prepared model input, found by tracing the input ops."""
    return [self.input_ops.output_shape(self._stored_shape(k)) for k in self.input_keys]

  def outputs(self, variables: dict[str, Any], inputs: Sequence[jax.Array]) -> dict[str, jax.Array]:
    """Evaluation-mode model outputs {head: [N, width]} for prepared inputs."""
    return self.model.apply(variables, *inputs, train=False)

  def _sums(self, outputs, batch, losses, weights) -> dict[str, jax.Array]:
    """Weighted sums over the batch of every metric in `metric_names`."""
    sums = {"loss": jnp.sum(weighted_loss(losses, self.heads) * weights)}
    for head in self.heads:
      out, y = outputs[head.name].astype(jnp.float32), batch[head.target]
      sums[f"{head.name}_loss"] = jnp.sum(losses[head.name] * weights)
      if head.kind == "regression":
        sums[f"{head.name}_mae"] = jnp.sum(jnp.abs(out[:, 0] - y.astype(jnp.float32)) * weights)
      elif head.kind == "multiclass":
        sums[f"{head.name}_accuracy"] = jnp.sum(cls_metrics.correct(out, y) * weights)
      else:
        sums[f"{head.name}_accuracy"] = jnp.sum(binary_metrics.binary_correct(out[:, 0], y) * weights)
    return sums

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs):
    """One optimizer update of "model" on a global batch.

    Args:
      state: the current train state.
      batch: the input keys ([N, H, W, C] each) and every head's target key ([N]).
      txs: the optimizers ("model").

    Returns:
      (new state, {metric: batch mean}).
    """
    step_rng = state.step_rng()
    inputs = self.prepare_inputs(jax.random.fold_in(step_rng, 0), batch, train=True)
    targets = {h.target: batch[h.target] for h in self.heads}

    def loss_of(outputs, micro):
      losses = head_losses(outputs, micro["targets"], self.heads)
      return jnp.mean(weighted_loss(losses, self.heads)), (outputs, losses)

    new_state, (outputs, losses) = base.supervised_update(
        state, txs, self.model, {"inputs": tuple(inputs), "targets": targets}, loss_of,
        jax.random.fold_in(step_rng, 1), self.grad_accum_steps, self.remat)
    count = inputs[0].shape[0]
    weights = jnp.ones((count,), jnp.float32)
    return new_state, base.weighted_mean_metrics(self._sums(outputs, batch, losses, weights), count)

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Summed statistics of one padded eval batch (with "mask"); padded rows count zero."""
    outputs = self.outputs(state.variables("model"), self.prepare_inputs(jax.random.PRNGKey(0), batch, train=False))
    weights = batch["mask"].astype(jnp.float32)
    sums = self._sums(outputs, batch, head_losses(outputs, batch, self.heads), weights)
    sums["count"] = jnp.sum(weights)
    for head in self.heads:
      if head.kind == "binary":
        sums[f"{head.name}_auc_pos"], sums[f"{head.name}_auc_neg"] = binary_metrics.score_histograms(
            outputs[head.name][:, 0], batch[head.target], weights)
    if self._confusion_head is not None:
      head = self._confusion_head
      sums["confusion"] = cls_metrics.confusion_matrix(batch[head.target], jnp.argmax(outputs[head.name], -1),
                                                       head.num_classes, weights)
    return sums

  def evaluators(self) -> list[Evaluator]:
    keys = list(self.metric_names) + ["count"]
    keys += [f"{h.name}_auc_{side}" for h in self.heads if h.kind == "binary" for side in ("pos", "neg")]
    if self._confusion_head is not None:
      keys.append("confusion")
    return [SumEvaluator(keys, self.reduce_eval)]

  def write_reports(self, workdir: str, metrics, summary) -> list[str]:
    """confusion_matrix.png of the head whose target is the dataset's label (when there is one)."""
    del summary
    if "confusion" not in metrics:
      return []
    path = os.path.join(workdir, "confusion_matrix.png")
    plots.plot_confusion_matrix(metrics["confusion"], self.spec.class_names, path)
    return [path]

  def reduce_eval(self, sums: dict[str, np.ndarray]) -> dict[str, Any]:
    """Summed eval statistics over all batches -> metrics (means, AUCs) and the label head's confusion."""
    count = float(sums["count"])
    metrics = {k: float(sums[k]) / count for k in self.metric_names}
    for head in self.heads:
      if head.kind == "binary":
        metrics[f"{head.name}_auc"] = binary_metrics.auc_from_histograms(sums[f"{head.name}_auc_pos"],
                                                                         sums[f"{head.name}_auc_neg"])
    metrics["num_examples"] = int(round(count))
    if "confusion" in sums:
      metrics["confusion"] = np.asarray(sums["confusion"]).round().astype(np.int64)
    return metrics
