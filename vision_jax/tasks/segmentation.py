"""Semantic segmentation: one network ("model") mapping images [N, H, W, C] to per-pixel logits [N, H, W, K],
trained on the dataset's mask feature (`semantic_mask`, kind "mask"; `IGNORE_INDEX` pixels are not scored).

Config (`config.segmentation`, every key optional):
  * loss_weights: loss name -> weight, names of `vision_jax.losses.segmentation.LOSSES` (cross_entropy, focal,
    dice, jaccard); default {"cross_entropy": 1.0}. loss_options: loss name -> its keyword arguments
    (e.g. {"focal": {"gamma": 2.0}}). class_weights: "" or a comma list of K cross-entropy class weights.
  * grid_examples: test images drawn in segmentation_grid.png (0: none).
  * predict_dir: where `--mode=predict` writes its PNGs ("" -> beside each input file).
Augmentation (`input.preprocess`, `input.augment`) moves the masks with the pixels (nearest; pixels that come
from outside the image are ignored); `input.normalize` touches only the image.

Metrics: `loss` (the weighted total), `pixel_accuracy` in training; in evaluation also `mean_iou` (Keras /
torchmetrics macro semantics: classes absent from truth and prediction are skipped), `mean_dice`, arrays
`per_class_iou`, `per_class_dice`, `per_class_pixels` and the pixel `confusion` matrix. Reports:
segmentation_grid.png (test images, truth, prediction) and the per-class table in summary.json.
`--mode=predict`: per input file, `<stem>_mask.png` (indexed PNG of the predicted classes, at the file's size)
and `<stem>_overlay.png` (the image, the prediction and, when `../masks/<stem>.png` exists beside an `images/`
folder as in the mask_pairs layout, the truth).
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from PIL import Image

from vision_jax.data.augment import annotations
from vision_jax.data.formats import images as image_files
from vision_jax.data.features import IGNORE_INDEX, DatasetSpec, typed_features
from vision_jax.errors import ConfigError
from vision_jax.evaluation import segmentation as seg_metrics
from vision_jax.evaluation.evaluators import Evaluator, FirstExamplesEvaluator, SumEvaluator
from vision_jax.losses.segmentation import combined_loss
from vision_jax.models import overrides
from vision_jax.plots import segmentation as seg_plots
from vision_jax.tasks import base
from vision_jax.train_lib import step_memory
from vision_jax.train_lib.state import TrainState

DEFAULTS = {"loss_weights": {"cross_entropy": 1.0}, "loss_options": {}, "class_weights": "", "grid_examples": 8,
            "predict_dir": ""}


def settings(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """`config.segmentation` over `DEFAULTS`, as plain Python values."""
  section = config.get("segmentation") or {}
  section = section.to_dict() if hasattr(section, "to_dict") else dict(section)
  unknown = sorted(set(section) - set(DEFAULTS))
  if unknown:
    raise ConfigError(f"unknown config.segmentation key {unknown[0]!r}; keys: {', '.join(DEFAULTS)}")
  return {**DEFAULTS, **section}


@base.register("segmentation")
class SegmentationTask(base.Task):
  """Per-pixel classification into the classes of the dataset's mask feature.

  Args:
    config: the experiment config (model, input, segmentation, train sections are read).
    spec: the training split's `DatasetSpec`; it must have a feature of kind "mask".
  """

  best_metric = ("mean_iou", "max")
  curve_metrics = ("loss", "pixel_accuracy", "mean_iou")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    mask_keys = spec.keys_of_kind("mask")
    if not mask_keys:
      raise ConfigError(f"task 'segmentation' needs per-pixel masks; dataset {spec.name!r} has none: use "
                        "digit_scenes, oxford_iiit_pet or mask_pairs:PATH")
    self.mask_key = mask_keys[0]
    feature = typed_features(spec)[self.mask_key]
    self.num_classes = int(feature.num_classes)
    self.class_names = tuple(feature.class_names) or tuple(str(k) for k in range(self.num_classes))
    if self.num_classes < 2:
      raise ConfigError(f"mask {self.mask_key!r} of {spec.name!r} has {self.num_classes} classes; segmentation "
                        "needs at least 2 (list them in classes.txt)")
    self.settings = settings(config)
    self.loss_weights = dict(self.settings["loss_weights"])
    self.loss_options = {k: dict(v) for k, v in dict(self.settings["loss_options"]).items()}
    self.class_weights = self._class_weights(self.settings["class_weights"])
    if self.class_weights is not None:
      self.loss_options.setdefault("cross_entropy", {})["class_weights"] = self.class_weights
    jax.eval_shape(lambda: self.loss(jnp.zeros((1, 1, 1, self.num_classes)), jnp.zeros((1, 1, 1), jnp.int32)))
    # (traced now, so that an unknown loss name or option is a ConfigError before any compilation)
    self.model: nn.Module = overrides.from_config(config.model, num_classes=self.num_classes,
                                                  **base.compute_dtype(config))
    self.grad_accum_steps = int(config.train.grad_accum_steps)
    step_memory.remat_policy(config.train.remat)
    self.remat = config.train.remat
    self.input_ops = base.InputOps(config.input)
    if self.input_ops.augment.mixes_labels:
      raise ConfigError("mixup/cutmix mix class labels, not masks; remove them from input.augment")

  def _class_weights(self, text: str) -> tuple[float, ...] | None:
    if not str(text).strip():
      return None
    try:
      weights = tuple(float(v) for v in str(text).split(","))
    except ValueError:
      raise ConfigError(f"segmentation.class_weights {text!r} is not a comma list of numbers") from None
    if len(weights) != self.num_classes:
      raise ConfigError(f"segmentation.class_weights has {len(weights)} values for {self.num_classes} classes; "
                        "give one per class")
    return weights

  # --- Networks ------------------------------------------------------------------------------------------------
  def networks(self) -> dict[str, nn.Module]:
    return {"model": self.model}

  def input_shape(self) -> tuple[int, ...]:
    """The model's per-example input shape (stored images through the input ops)."""
    shape = tuple(self.spec.image_shape)
    if self.config.input.image_size:
      shape = (self.config.input.image_size,) * 2 + shape[2:]
    return self.input_ops.output_shape(shape)

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    return (jnp.zeros((1,) + self.input_shape(), jnp.float32),)

  def identity(self) -> dict[str, Any]:
    return {"num_classes": self.num_classes}

  # --- Steps ---------------------------------------------------------------------------------------------------
  def prepare(self, rng: jax.Array, images: jax.Array, masks: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
    """Stored images [N, H, W, C] and masks [N, H, W] -> (model input, int32 labels), moved together."""
    ops = self.input_ops
    packed = annotations.pack_masks(semantic=masks.astype(jnp.int32))
    sample = ops.preprocess.apply(jax.random.fold_in(rng, 0), images, masks=packed)
    if train:
      sample = ops.augment.apply(jax.random.fold_in(rng, 1), sample.images, masks=sample.masks)
    labels, _ = annotations.unpack_masks(sample.masks, semantic=True)
    return ops.normalize(jax.random.fold_in(rng, 2), sample.images), labels.astype(jnp.int32)

  def loss(self, logits: jax.Array, labels: jax.Array,
           example_mask: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The configured weighted loss of logits [N, H, W, K] and labels [N, H, W]: ([] total, {name: part})."""
    return combined_loss(logits, labels, self.loss_weights, self.loss_options, IGNORE_INDEX, example_mask)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs: Mapping[str, optax.GradientTransformation]):
    """One optimizer update of "model": batch {"image": [N, H, W, C], mask key: [N, H, W]} -> (state, metrics)."""
    step_rng = state.step_rng()
    images, labels = self.prepare(jax.random.fold_in(step_rng, 0), batch["image"], batch[self.mask_key], train=True)

    def loss_of(logits, micro):
      total, parts = self.loss(logits, micro["labels"])
      correct, labelled = _pixel_counts(logits, micro["labels"])
      return total, (total[None], correct[None], labelled[None], {k: v[None] for k, v in parts.items()})

    new_state, (totals, correct, labelled, parts) = base.supervised_update(
        state, txs, self.model, {"inputs": (images,), "labels": labels}, loss_of, jax.random.fold_in(step_rng, 1),
        self.grad_accum_steps, self.remat)
    metrics = {"loss": jnp.mean(totals), "pixel_accuracy": jnp.sum(correct) / jnp.maximum(jnp.sum(labelled), 1)}
    if len(parts) > 1:
      metrics.update({f"{k}_loss": jnp.mean(v) for k, v in parts.items()})
    return new_state, metrics

  def logits(self, state: TrainState, images: jax.Array) -> jax.Array:
    """Logits [N, H, W, K] of stored-format images (no augmentation)."""
    dummy = jnp.zeros(images.shape[:3], jnp.int32)
    prepared, _ = self.prepare(jax.random.PRNGKey(0), images, dummy, train=False)
    return self.model.apply(state.variables("model"), prepared, train=False)

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Confusion matrix, loss sum and the report's rows of one padded eval batch (its `mask` marks examples)."""
    images, labels = self.prepare(jax.random.PRNGKey(0), batch["image"], batch[self.mask_key], train=False)
    logits = self.model.apply(state.variables("model"), images, train=False)
    weights = batch["mask"].astype(jnp.float32)
    count = jnp.sum(weights)
    total, _ = self.loss(logits, labels, example_mask=weights)
    predictions = jnp.argmax(logits, -1)
    return {"loss": total * count, "count": count, "mask": batch["mask"],
            "confusion": seg_metrics.confusion_matrix(labels, predictions, self.num_classes, IGNORE_INDEX, weights),
            "image": batch["image"], "prediction": predictions.astype(jnp.uint8),
            "truth": labels.astype(jnp.uint8)}

  def evaluators(self) -> list[Evaluator]:
    evaluators: list[Evaluator] = [SumEvaluator(("loss", "count", "confusion"), self.reduce_eval)]
    if int(self.settings["grid_examples"]) > 0:
      evaluators.append(FirstExamplesEvaluator(("image", "prediction", "truth"), int(self.settings["grid_examples"])))
    return evaluators

  def reduce_eval(self, sums: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Summed eval statistics -> loss, pixel_accuracy, mean_iou, mean_dice, per-class arrays, confusion."""
    count = float(sums["count"])
    confusion = np.asarray(sums["confusion"]).round().astype(np.int64)
    return {"loss": float(sums["loss"]) / max(count, 1.0), "num_examples": int(round(count)),
            "pixel_accuracy": seg_metrics.pixel_accuracy(confusion), "mean_iou": seg_metrics.mean_iou(confusion),
            "mean_dice": seg_metrics.mean_dice(confusion), "per_class_iou": seg_metrics.per_class_iou(confusion),
            "per_class_dice": seg_metrics.per_class_dice(confusion), "per_class_pixels": confusion.sum(1),
            "confusion": confusion}

  # --- Reports -------------------------------------------------------------------------------------------------
  def per_class_table(self, metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{class name: {"iou", "dice" (None where the class never appeared), "pixels"}} for summary.json."""
    def number(value):
      return None if math.isnan(float(value)) else round(float(value), 6)

    return {name: {"iou": number(metrics["per_class_iou"][k]), "dice": number(metrics["per_class_dice"][k]),
                   "pixels": int(metrics["per_class_pixels"][k])} for k, name in enumerate(self.class_names)}

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """segmentation_grid.png and `summary["per_class"]` (IoU, Dice, labelled pixels of each class)."""
    paths = []
    if "per_class_iou" in metrics:
      summary["per_class"] = self.per_class_table(metrics)
    if "grid_image" in metrics and len(metrics["grid_image"]):
      paths.append(os.path.join(workdir, "segmentation_grid.png"))
      title = f"mIoU {metrics['mean_iou']:.3f}, pixel accuracy {metrics['pixel_accuracy']:.3f}"
      seg_plots.plot_segmentation_grid(metrics["grid_image"], metrics["grid_prediction"], metrics["grid_truth"],
                                       paths[-1], self.class_names, title)
    return paths

  # --- Predict -------------------------------------------------------------------------------------------------
  def predict(self, state: TrainState, paths: Sequence[str]) -> list[str]:
    """Writes `<stem>_mask.png` and `<stem>_overlay.png` per input file (see the module docstring)."""
    logits_fn = jax.jit(self.logits)
    lines = []
    for path in paths:
      original, model_input = self._read_input(path)
      probabilities = jax.nn.softmax(logits_fn(state, model_input[None])[0], -1)
      predicted = np.asarray(jnp.argmax(probabilities, -1), np.uint8)
      if predicted.shape != original.shape[:2]:
        predicted = np.asarray(Image.fromarray(predicted).resize(original.shape[1::-1], Image.NEAREST))
      directory = self.settings["predict_dir"] or os.path.dirname(os.path.abspath(path))
      os.makedirs(directory, exist_ok=True)
      stem = os.path.join(directory, os.path.splitext(os.path.basename(path))[0])
      seg_plots.save_indexed_png(predicted, f"{stem}_mask.png")
      truth = _truth_beside(path, original.shape[:2])
      seg_plots.plot_overlay(original, predicted, f"{stem}_overlay.png", truth, self.class_names,
                             os.path.basename(path))
      shares = np.bincount(predicted.reshape(-1), minlength=self.num_classes) / predicted.size
      top = np.argsort(-shares, kind="stable")[:3]
      lines.append(f"{path}: " + ", ".join(f"{self.class_names[k]} {shares[k]:.1%}" for k in top if shares[k] > 0)
                   + f" -> {stem}_mask.png, {stem}_overlay.png")
    return lines

  def _read_input(self, path: str) -> tuple[np.ndarray, np.ndarray]:
    """(the file's image [h, w, C], the image in the stored shape the model was trained on)."""
    channels = self.spec.image_shape[-1]
    array = image_files.read_image(path, channels)  # 16-bit / float images converted faithfully, bombs refused
    height, width = self.spec.image_shape[:2]
    size = int(self.config.input.image_size)
    target = (size, size) if size else (height, width)
    if not all(target):
      return array, array
    resized = np.asarray(Image.fromarray(array[..., 0] if channels == 1 else array).resize(target[::-1],
                                                                                             Image.BILINEAR))
    return array, resized[..., None] if resized.ndim == 2 else resized


def _pixel_counts(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(correctly classified, labelled) pixel counts of a batch."""
  labelled = (labels != IGNORE_INDEX) & (labels >= 0) & (labels < logits.shape[-1])
  correct = (jnp.argmax(logits, -1) == labels) & labelled
  return jnp.sum(correct).astype(jnp.float32), jnp.sum(labelled).astype(jnp.float32)


def _truth_beside(path: str, shape: tuple[int, int]) -> np.ndarray | None:
  """The mask of an image under `ROOT/images/` at `ROOT/masks/<same path>.png` (mask_pairs layout), if any."""
  parts = os.path.abspath(path).split(os.sep)
  if "images" not in parts:
    return None
  index = len(parts) - 1 - parts[::-1].index("images")
  candidate = os.path.splitext(os.sep.join(parts[:index] + ["masks"] + parts[index + 1:]))[0] + ".png"
  if not os.path.isfile(candidate):
    return None
  with Image.open(candidate) as mask:
    truth = np.asarray(mask)
  return truth if truth.shape == tuple(shape) else None
