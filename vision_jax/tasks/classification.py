"""Image classification: one network ("model"), softmax cross-entropy (with label smoothing, mixup/cutmix soft
targets and auxiliary heads), accuracy/top-5/confusion metrics, per-class reports, ensembles and TTA in
`--mode=eval`, top-k classes in `--mode=predict`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vision_jax import plots
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation import classification as cls_metrics
from vision_jax.evaluation.evaluators import Evaluator, SumEvaluator
from vision_jax.losses.classification import cross_entropy, soft_cross_entropy
from vision_jax.models import overrides
from vision_jax.tasks import base
from vision_jax.train_lib import step_memory
from vision_jax.train_lib.state import TrainState


# Weight of each auxiliary classifier's loss (GoogLeNet, Inception v3): Szegedy et al., "Going Deeper with
# Convolutions", 2014, section 5.
AUX_LOSS_WEIGHT = 0.3


def split_aux_logits(outputs: jax.Array | tuple[jax.Array, ...]) -> tuple[jax.Array, tuple[jax.Array, ...]]:
  """A model's output -> (main logits [N, K], auxiliary logits); models with aux heads return a tuple."""
  if isinstance(outputs, (tuple, list)):
    return outputs[0], tuple(outputs[1:])
  return outputs, ()


@base.register("classification")
def make_classification_task(config: ml_collections.ConfigDict, spec: DatasetSpec) -> "ClassificationTask":
  """`config.task = "classification"`: images, or signals/volumes (`ArrayClassificationTask`) by input rank."""
  if len(spec.image_shape) != 3:
    from vision_jax.tasks.array_classification import ArrayClassificationTask  # pylint: disable=import-outside-toplevel
    return ArrayClassificationTask(config, spec)
  return ClassificationTask(config, spec)


class ClassificationTask(base.Task):
  """Classification of images into `spec.num_classes` classes.

  Args:
    config: the experiment config (model, input, loss, train, eval, predict sections are read).
    spec: the training split's `DatasetSpec` (gives classes and image shape).
  """

  best_metric = ("accuracy", "max")
  curve_metrics = ("loss", "accuracy")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    if not spec.has_labels or spec.num_classes < 2:
      raise ConfigError(f"task 'classification' needs class labels; dataset {spec.name!r} has none: pick a labelled "
                        "dataset or another task")
    self.num_classes = spec.num_classes
    # name, kwargs and the activation/initializer/batch-norm/dropout switches (vision_jax.models.overrides)
    self.model: nn.Module = overrides.from_config(config.model, num_classes=spec.num_classes,
                                                  **base.compute_dtype(config))
    self.grad_accum_steps = int(config.train.grad_accum_steps)
    step_memory.remat_policy(config.train.remat)  # a ConfigError now for an unknown policy name
    self.remat = config.train.remat
    self.input_ops = base.InputOps(config.input)
    self.label_smoothing = float(config.loss.label_smoothing)
    self.top_k = 5 if spec.num_classes > 5 else 0

  def networks(self) -> dict[str, nn.Module]:
    return {"model": self.model}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    return (jnp.zeros((1,) + self.input_shape(), jnp.float32),)

  def identity(self) -> dict[str, Any]:
    return {"num_classes": int(self.num_classes)}

  @property
  def metric_names(self) -> tuple[str, ...]:
    """Metrics reported by train and eval steps."""
    return ("loss", "accuracy") + (("top5_accuracy",) if self.top_k else ())

  def prepare_images(self, rng: jax.Array, images: jax.Array, train: bool) -> jax.Array:
    """Stored images -> model input: preprocess, augment (training only), normalize."""
    return self.input_ops(rng, images, train)

  def train_inputs(self, rng: jax.Array, images: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Training batch -> (model input [N, ...], soft targets [N, K]).

    Targets are the label-smoothed one-hot labels, mixed with the images by mixup/cutmix when `input.augment`
    has them. The keys are those of `prepare_images`, so pipelines without mixing give the same images.
    """
    ops = self.input_ops
    targets = optax.smooth_labels(jax.nn.one_hot(labels, self.num_classes), self.label_smoothing)
    images = ops.preprocess(jax.random.fold_in(rng, 0), images)
    out = ops.augment.apply(jax.random.fold_in(rng, 1), images, targets=targets)
    return ops.normalize(jax.random.fold_in(rng, 2), out.images), out.targets

  def input_shape(self) -> tuple[int, ...]:
    """The model's input shape for one example, found by tracing `prepare_images`."""
    stored = jax.ShapeDtypeStruct((1,) + tuple(self.spec.image_shape), jnp.uint8)
    return jax.eval_shape(lambda x: self.prepare_images(jax.random.PRNGKey(0), x, False), stored).shape[1:]

  def _metrics(self, logits: jax.Array, labels: jax.Array, losses: jax.Array, weights: jax.Array):
    sums = {"loss": jnp.sum(losses * weights),
            "accuracy": jnp.sum(cls_metrics.correct(logits, labels, 1) * weights)}
    if self.top_k:
      sums["top5_accuracy"] = jnp.sum(cls_metrics.correct(logits, labels, self.top_k) * weights)
    return sums

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs: Mapping[str, optax.GradientTransformation]):
    """One optimizer update of "model" on a global batch.

    Args:
      state: the current train state.
      batch: {"image": [N, H, W, C], "label": [N]}.
      txs: the optimizers ("model").

    Returns:
      (new state, {metric: batch mean}); the loss is against the (possibly mixed) targets, accuracy against
      each example's own label. Auxiliary heads add `AUX_LOSS_WEIGHT` x their loss to the optimized loss; the
      reported loss is the main head's.
    """
    step_rng = state.step_rng()
    labels = batch["label"]
    images, targets = self.train_inputs(jax.random.fold_in(step_rng, 0), batch["image"], labels)

    def loss_of(outputs, micro):
      logits, aux = split_aux_logits(outputs)
      losses = soft_cross_entropy(logits, micro["target"])
      aux_loss = sum(jnp.mean(soft_cross_entropy(a, micro["target"])) for a in aux)
      return jnp.mean(losses) + AUX_LOSS_WEIGHT * aux_loss, (logits, losses)

    new_state, (logits, losses) = base.supervised_update(
        state, txs, self.model, {"inputs": (images,), "target": targets}, loss_of, jax.random.fold_in(step_rng, 1),
        self.grad_accum_steps, self.remat)
    count = labels.shape[0]
    return new_state, base.weighted_mean_metrics(self._metrics(logits, labels, losses, jnp.ones_like(losses)), count)

  def logits(self, state: TrainState, images: jax.Array) -> jax.Array:
    """Logits [N, K] of stored-format images (no augmentation)."""
    prepared = self.prepare_images(jax.random.PRNGKey(0), images, train=False)
    return split_aux_logits(self.model.apply(state.variables("model"), prepared, train=False))[0]

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Summed statistics of one padded eval batch ({"image", "label", "mask"}); padded rows count zero."""
    logits = self.logits(state, batch["image"])
    labels, weights = batch["label"], batch["mask"].astype(jnp.float32)
    sums = self._metrics(logits, labels, cross_entropy(logits, labels), weights)
    sums["count"] = jnp.sum(weights)
    sums["confusion"] = cls_metrics.confusion_matrix(labels, jnp.argmax(logits, -1), self.num_classes, weights)
    return sums

  def evaluators(self) -> list[Evaluator]:
    return [SumEvaluator(self.metric_names + ("count", "confusion"), self.reduce_eval)]

  def reduce_eval(self, sums: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Summed eval statistics over all batches -> metrics.

    Returns:
      Means of `metric_names`, `num_examples`, `macro_f1`, the [K, K] `confusion` matrix and [K] arrays
      `per_class_precision`, `per_class_recall`, `per_class_f1`, `per_class_support`.
    """
    count = float(sums["count"])
    metrics = {k: float(sums[k]) / count for k in self.metric_names}
    metrics["num_examples"] = int(round(count))
    metrics["confusion"] = np.asarray(sums["confusion"]).round().astype(np.int64)
    per_class = cls_metrics.precision_recall_f1(metrics["confusion"])
    metrics["macro_f1"] = float(np.mean(per_class["f1"]))
    metrics.update({f"per_class_{k}": v for k, v in per_class.items()})
    return metrics

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """confusion_matrix.png and the per-class table in summary.json."""
    paths = []
    names = self.spec.class_names
    if "confusion" in metrics:
      paths.append(os.path.join(workdir, "confusion_matrix.png"))
      plots.plot_confusion_matrix(metrics["confusion"], names, paths[-1])
    if "per_class_f1" in metrics:
      summary["per_class"] = cls_metrics.per_class_report(metrics, names)
    return paths

  def eval_mode(self, members, runner) -> list[str]:
    """`--mode=eval`: one run or an ensemble, with the TTA of `config.eval`; writes eval.json and
    misclassified.png (`vision_jax.tasks.classification_eval`)."""
    from vision_jax.tasks import classification_eval  # pylint: disable=import-outside-toplevel
    return classification_eval.eval_mode(members, runner)

  def predict(self, state: TrainState, paths: Sequence[str]) -> list[str]:
    """Top-k classes (`config.predict.top_k`) of image files."""
    from vision_jax.tasks import classification_eval  # pylint: disable=import-outside-toplevel
    return classification_eval.predict_lines(self, state, paths)
