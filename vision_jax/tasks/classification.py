"""Image classification: the model, its loss and metrics, and the bodies of the train and eval steps.

The train loop is generic; it calls `task.train_step` and `task.eval_step` under `jax.jit` with the shardings
it chooses, and `task.reduce_eval` to turn summed eval statistics into metrics.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vision_jax.data import augment
from vision_jax.data.features import DatasetSpec
from vision_jax.evaluation import classification as cls_metrics
from vision_jax.train_lib import step_memory
from vision_jax.models import overrides
from vision_jax.train_lib.state import TrainState


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
  """Softmax cross-entropy per example with optional label smoothing (Szegedy et al., 2016).

  Args:
    logits: [N, K] unnormalized scores.
    labels: [N] integer classes.
    label_smoothing: mass moved uniformly over all K classes (0 = one-hot targets).

  Returns:
    [N] losses, computed in float32.
  """
  num_classes = logits.shape[-1]
  targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
  return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


# Weight of each auxiliary classifier's loss (GoogLeNet, Inception v3): Szegedy et al., "Going Deeper with
# Convolutions", 2014, section 5.
AUX_LOSS_WEIGHT = 0.3


def split_aux_logits(outputs: jax.Array | tuple[jax.Array, ...]) -> tuple[jax.Array, tuple[jax.Array, ...]]:
  """A model's output -> (main logits [N, K], auxiliary logits); models with aux heads return a tuple."""
  if isinstance(outputs, (tuple, list)):
    return outputs[0], tuple(outputs[1:])
  return outputs, ()


class ClassificationTask:
  """Classification of images into `spec.num_classes` classes.

  Args:
    config: the experiment config (model, input, loss sections are read).
    spec: the training split's `DatasetSpec` (gives classes and image shape).
  """

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    self.config = config
    self.spec = spec
    self.num_classes = spec.num_classes
    # name, kwargs and the activation/initializer/batch-norm/dropout switches (vision_jax.models.overrides)
    compute = {} if config.train.compute_dtype == "float32" else {"dtype": jnp.dtype(config.train.compute_dtype)}
    self.model: nn.Module = overrides.from_config(config.model, num_classes=spec.num_classes, **compute)
    self.grad_accum_steps = int(config.train.grad_accum_steps)
    step_memory.remat_policy(config.train.remat)  # a ConfigError now for an unknown policy name
    self.remat = config.train.remat
    self._preprocess = augment.build(config.input.preprocess)
    self._augment = augment.build(config.input.augment)
    self._normalize = augment.build(config.input.normalize)
    self.label_smoothing = float(config.loss.label_smoothing)
    self.top_k = 5 if spec.num_classes > 5 else 0

  @property
  def metric_names(self) -> tuple[str, ...]:
    """Metrics reported by train and eval steps."""
    return ("loss", "accuracy") + (("top5_accuracy",) if self.top_k else ())

  def prepare_images(self, rng: jax.Array, images: jax.Array, train: bool) -> jax.Array:
    """Stored images -> model input: preprocess, augment (training only), normalize."""
    images = self._preprocess(jax.random.fold_in(rng, 0), images)
    if train:
      images = self._augment(jax.random.fold_in(rng, 1), images)
    return self._normalize(jax.random.fold_in(rng, 2), images)

  def train_inputs(self, rng: jax.Array, images: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Training batch -> (model input [N, ...], soft targets [N, K]).

    Targets are the label-smoothed one-hot labels, mixed with the images by mixup/cutmix when `input.augment`
    has them. The keys are those of `prepare_images`, so pipelines without mixing give the same images.
    """
    targets = optax.smooth_labels(jax.nn.one_hot(labels, self.num_classes), self.label_smoothing)
    images = self._preprocess(jax.random.fold_in(rng, 0), images)
    out = self._augment.apply(jax.random.fold_in(rng, 1), images, targets=targets)
    return self._normalize(jax.random.fold_in(rng, 2), out.images), out.targets

  def input_shape(self) -> tuple[int, ...]:
    """The model's input shape for one example, found by tracing `prepare_images`."""
    stored = jax.ShapeDtypeStruct((1,) + tuple(self.spec.image_shape), jnp.uint8)
    return jax.eval_shape(lambda x: self.prepare_images(jax.random.PRNGKey(0), x, False), stored).shape[1:]

  def init_variables(self, rng: jax.Array) -> dict[str, Any]:
    """Initial model variables for one example of the prepared input shape."""
    dummy = jnp.zeros((1,) + self.input_shape(), jnp.float32)
    return self.model.init({"params": rng, "dropout": rng}, dummy, train=False)

  def _metrics(self, logits: jax.Array, labels: jax.Array, losses: jax.Array, weights: jax.Array):
    sums = {"loss": jnp.sum(losses * weights),
            "accuracy": jnp.sum(cls_metrics.correct(logits, labels, 1) * weights)}
    if self.top_k:
      sums["top5_accuracy"] = jnp.sum(cls_metrics.correct(logits, labels, self.top_k) * weights)
    return sums

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], tx: optax.GradientTransformation):
    """One optimizer update on a global batch.

    Args:
      state: the current train state.
      batch: {"image": [N, H, W, C], "label": [N]}.
      tx: the optimizer.

    Returns:
      (new state, {metric: batch mean}); the loss is against the (possibly mixed) targets, accuracy against
      each example's own label. Auxiliary heads add `AUX_LOSS_WEIGHT` x their loss to the optimized loss; the
      reported loss is the main head's.
    """
    step_rng = jax.random.fold_in(state.rng, state.step)
    labels = batch["label"]
    images, targets = self.train_inputs(jax.random.fold_in(step_rng, 0), batch["image"], labels)

    dropout_rng = jax.random.fold_in(step_rng, 1)
    apply = step_memory.maybe_remat(
        lambda variables, images, rng: self.model.apply(variables, images, train=True, rngs={"dropout": rng},
                                                        mutable=["batch_stats"]), self.remat)

    def micro_batch_grads(params, micro, batch_stats, index):
      def loss_fn(params):
        variables = {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}
        outputs, updates = apply(variables, micro["image"], jax.random.fold_in(dropout_rng, index))
        logits, aux = split_aux_logits(outputs)
        losses = optax.softmax_cross_entropy(logits.astype(jnp.float32), micro["target"])
        aux_loss = sum(jnp.mean(optax.softmax_cross_entropy(a.astype(jnp.float32), micro["target"])) for a in aux)
        return jnp.mean(losses) + AUX_LOSS_WEIGHT * aux_loss, (logits, losses, updates.get("batch_stats", batch_stats))

      grads, (logits, losses, batch_stats) = jax.grad(loss_fn, has_aux=True)(params)
      return grads, ((logits, losses), batch_stats)

    # One micro-batch (the default) is a plain gradient; k > 1 scans over k slices of the batch.
    grads, (logits, losses), batch_stats = step_memory.accumulate_gradients(
        micro_batch_grads, state.params, {"image": images, "target": targets}, state.batch_stats,
        self.grad_accum_steps)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    updates = jax.tree.map(lambda u: u * state.lr_scale.astype(u.dtype), updates)
    new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              batch_stats=batch_stats, opt_state=opt_state)
    count = labels.shape[0]
    metrics = {k: v / count for k, v in self._metrics(logits, labels, losses, jnp.ones_like(losses)).items()}
    return new_state, metrics

  def logits(self, state: TrainState, images: jax.Array) -> jax.Array:
    """Logits [N, K] of stored-format images (no augmentation)."""
    prepared = self.prepare_images(jax.random.PRNGKey(0), images, train=False)
    return split_aux_logits(self.model.apply(state.variables(), prepared, train=False))[0]

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Summed statistics of one padded eval batch ({"image", "label", "mask"}); padded rows count zero."""
    logits = self.logits(state, batch["image"])
    labels, weights = batch["label"], batch["mask"].astype(jnp.float32)
    sums = self._metrics(logits, labels, cross_entropy(logits, labels), weights)
    sums["count"] = jnp.sum(weights)
    sums["confusion"] = cls_metrics.confusion_matrix(labels, jnp.argmax(logits, -1), self.num_classes, weights)
    return sums

  def reduce_eval(self, sums: dict[str, np.ndarray]) -> dict[str, Any]:
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
