"""Classification + localisation of one object per image, with optional landmark (keypoint) regression.

A config selects it with `task = "localization"` on a dataset whose examples hold a label, `boxes` [1, 4] (the
first row is the object) and, for landmarks, `keypoints` [K, 3] (e.g. `digit_localization`). Settings live in
`config.localization`:
  * `keypoints` (bool): add the keypoint head and its losses and metrics;
  * `box_loss`: "smooth_l1", "giou" or "smooth_l1+giou"; `box_weight`, `giou_weight`, `beta` (smooth-L1 beta in
    normalised units);
  * `keypoint_weight`, `visibility_weight`; `label_smoothing` (of the class cross-entropy); `feature_dim` (backbone
    output width); `pictures` (cells of localization.png);
  * `crop_model` (a zoo classifier name, "" for a linear class head on the backbone's features), `crop_kwargs`
    (its constructor arguments), `crop_size`, `crop_margin` and `crop_jitter`: the class is read from a square
    crop around the box; training crops around the true box moved by up to `crop_jitter` x its longer side and
    rescaled by up to exp(+-crop_jitter), evaluation and predict crops around the predicted box.
The model is `vision_jax.models.detectors.localization.LocalizationNet` on the zoo classifier `model.name`.
Augmentation (`input.augment`) moves the box and the keypoints with the pixels; a left-right flip swaps the
keypoints of the feature's `flip_pairs`.

Loss per example: CE(class) + box_weight * smooth-L1(normalised xyxy) [+ giou_weight * (1 - GIoU)]
[+ keypoint_weight * visibility-aware smooth-L1 of the visible keypoints + visibility_weight * BCE(visibility)].

Metrics: `accuracy`; `box_iou` (mean IoU of the predicted and true box); `localization_accuracy` (fraction with
IoU >= 0.5 and the right class); with keypoints `nme` and `failure_rate`: per image, the mean distance of the
visible keypoints to their truth divided by the inter-corner distance, i.e. the distance between the true first
and third keypoints (for `digit_localization` the card's diagonal, top_left to bottom_right), averaged over
images with a visible keypoint; failure rate is the fraction of those images whose NME exceeds 0.1.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from vision_jax.data import augment
from vision_jax.data.augment.annotations import flip_permutation
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation import classification as cls_metrics
from vision_jax.evaluation.evaluators import Evaluator, GatherEvaluator, SumEvaluator
from vision_jax.losses import localization as loc_losses
from vision_jax.losses.classification import cross_entropy
from vision_jax.models.detectors import localization as loc_model
from vision_jax.ops.boxes import elementwise_box_iou
from vision_jax.tasks import base
from vision_jax.train_lib.state import TrainState

BOX_LOSSES = ("smooth_l1", "giou", "smooth_l1+giou")
FAILURE_NME = 0.1


def landmark_errors(predicted: jax.Array, keypoints: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per-image normalised mean error of keypoints (see the module docstring for the normaliser).

  Args:
    predicted: [N, K, 2] predicted x, y in pixels.
    keypoints: [N, K, 3] true x, y in pixels and visibility; K >= 3.

  Returns:
    (nme [N], has_visible [N] float 0/1); nme is 0 where no keypoint is visible.
  """
  visible = (keypoints[..., 2] > 0).astype(jnp.float32)
  distance = jnp.linalg.norm(predicted - keypoints[..., :2], axis=-1)
  normaliser = jnp.maximum(jnp.linalg.norm(keypoints[:, 0, :2] - keypoints[:, 2, :2], axis=-1), 1e-6)
  count = jnp.sum(visible, -1)
  nme = jnp.sum(distance * visible, -1) / jnp.maximum(count, 1.0) / normaliser
  return nme, (count > 0).astype(jnp.float32)


class FirstRowsEvaluator(GatherEvaluator):
  """Keeps the first `count` valid rows of some outputs (pictures) and returns them as arrays `prefix + key`."""

  def __init__(self, keys: Sequence[str], count: int, prefix: str = "picture_"):
    self.count, self.prefix = int(count), prefix
    super().__init__(keys, self._finish)

  def update(self, outputs: Mapping[str, np.ndarray]) -> None:
    if sum(len(r) for r in self.rows[self.keys[0]]) < self.count:
      super().update(outputs)

  def _finish(self, rows: dict[str, np.ndarray]) -> dict[str, Any]:
    return {self.prefix + k: np.asarray(v[:self.count]) for k, v in rows.items()}


def eval_mode_with_pictures(task: base.Task, members, runner) -> list[str]:
  """`Task.eval_mode` (eval.json of the best, else newest checkpoint) plus the task's `write_reports` pictures of
  that same evaluation, written into the run's workdir."""
  captured: dict[str, Any] = {}

  class _Capturing:
    @staticmethod
    def evaluate(config, workdir):
      captured["metrics"] = runner.evaluate(config, workdir)
      return captured["metrics"]

  lines = base.Task.eval_mode(task, members, _Capturing)
  if jax.process_index() != 0 or "metrics" not in captured:
    return lines
  return lines + [f"wrote {p}" for p in task.write_reports(members[0][1], captured["metrics"], {})]


@base.register("localization")
class LocalizationTask(base.Task):
  """One object per image: class, box and optional keypoints (see the module docstring).

  Args:
    config: the experiment config (model, input, localization, train sections are read).
    spec: the training split's `DatasetSpec`.
  """

  best_metric = ("localization_accuracy", "max")
  curve_metrics = ("loss", "accuracy", "box_iou", "localization_accuracy", "nme", "failure_rate")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    settings = config.get("localization") or ml_collections.ConfigDict()
    self.use_keypoints = bool(settings.get("keypoints", False))
    if not spec.has_labels or "boxes" not in spec.extra_features:
      raise ConfigError(f"task 'localization' needs a label and boxes per example; dataset {spec.name!r} lacks them: "
                        "use digit_localization or a detection dataset")
    if self.use_keypoints and "keypoints" not in spec.extra_features:
      raise ConfigError(f"localization.keypoints is on but dataset {spec.name!r} has no keypoints: turn it off")
    self.box_loss = str(settings.get("box_loss", "smooth_l1"))
    if self.box_loss not in BOX_LOSSES:
      raise ConfigError(f"localization.box_loss={self.box_loss!r} is unknown; use one of {', '.join(BOX_LOSSES)}")
    self.weights = {k: float(settings.get(k, d)) for k, d in (("box_weight", 5.0), ("giou_weight", 1.0),
                                                              ("keypoint_weight", 5.0), ("visibility_weight", 0.1))}
    self.beta = float(settings.get("beta", 0.02))
    self.label_smoothing = float(settings.get("label_smoothing", 0.0))
    self.num_pictures = int(settings.get("pictures", 16))
    features = spec.features.get("keypoints")
    self.num_keypoints = int(spec.extra_features["keypoints"][0]) if self.use_keypoints else 0
    self.keypoint_names = tuple(features.keypoint_names) if features else ()
    self.keypoint_flip = (flip_permutation(self.num_keypoints, features.flip_pairs)
                          if self.use_keypoints and features and features.flip_pairs else None)
    self.num_classes = spec.num_classes
    self.preprocess = augment.build(config.input.preprocess)
    self.augment = augment.build(config.input.augment, float(config.input.get("min_visible", 0.0)))
    self.normalize = augment.build(config.input.normalize)
    self.input_shape = base.InputOps(config.input).output_shape(spec.image_shape)
    self.crop_jitter = float(settings.get("crop_jitter", 0.1))
    self.crop_model = str(settings.get("crop_model", ""))
    self.model = loc_model.build(config.model.name, self.num_classes, self.num_keypoints,
                                 int(settings.get("feature_dim", 256)), config.model, crop_model=self.crop_model,
                                 crop_kwargs=settings.get("crop_kwargs"), crop_size=int(settings.get("crop_size", 32)),
                                 crop_margin=float(settings.get("crop_margin", 1.3)), **base.compute_dtype(config))

  def networks(self):
    return {"model": self.model}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    return (jnp.zeros((1,) + self.input_shape, jnp.float32),)

  def identity(self) -> dict[str, Any]:
    return {"num_classes": self.num_classes, "num_keypoints": self.num_keypoints}

  @property
  def metric_names(self) -> tuple[str, ...]:
    names = ["loss", "class_loss", "box_loss", "accuracy", "box_iou", "localization_accuracy"]
    if self.use_keypoints:
      names += ["keypoint_loss", "visibility_loss"]
    return tuple(names)

  # --- Inputs and losses ------------------------------------------------------------------------------------------
  def prepare(self, rng: jax.Array, batch: Mapping[str, jax.Array], train: bool) -> dict[str, jax.Array]:
    """Model inputs and targets in model-input pixels: image [N, H, W, C], box [N, 4], keypoints [N, K, 3]."""
    keypoints = batch["keypoints"].astype(jnp.float32) if self.use_keypoints else None
    flip = self.keypoint_flip if self.use_keypoints else None
    sample = augment.Sample(batch["image"], batch["boxes"][:, :1].astype(jnp.float32), keypoints=keypoints)
    stages = [(0, self.preprocess)] + ([(1, self.augment)] if train else []) + [(2, self.normalize)]
    for index, pipeline in stages:
      sample = pipeline.apply(jax.random.fold_in(rng, index), sample.images, boxes=sample.boxes,
                              keypoints=sample.keypoints, keypoint_flip=flip)
    out = {"image": sample.images, "box": sample.boxes[:, 0], "label": batch["label"]}
    if self.use_keypoints:
      out["keypoints"] = sample.keypoints
    return out

  def _scale(self) -> jax.Array:
    height, width = self.input_shape[:2]
    return jnp.array([width, height], jnp.float32)

  def losses(self, outputs: Mapping[str, jax.Array], prepared: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-example losses [N]: loss, class_loss, box_loss (and keypoint_loss, visibility_loss)."""
    scale = self._scale()
    target_box = prepared["box"] / jnp.tile(scale, 2)
    parts = {"class_loss": cross_entropy(outputs["logits"], prepared["label"], self.label_smoothing)}
    box = jnp.zeros_like(parts["class_loss"])
    if "smooth_l1" in self.box_loss:
      box += self.weights["box_weight"] * loc_losses.box_smooth_l1(outputs["boxes"], target_box, self.beta)
    if "giou" in self.box_loss:
      box += self.weights["giou_weight"] * loc_losses.giou_loss(outputs["boxes"], target_box)
    parts["box_loss"] = box
    total = parts["class_loss"] + box
    if self.use_keypoints:
      truth = prepared["keypoints"]
      normalised = jnp.concatenate([truth[..., :2] / scale, truth[..., 2:]], -1)
      parts["keypoint_loss"] = loc_losses.keypoint_loss(outputs["keypoints"], normalised, self.beta)
      parts["visibility_loss"] = loc_losses.visibility_loss(outputs["visibility"], truth)
      total += (self.weights["keypoint_weight"] * parts["keypoint_loss"]
                + self.weights["visibility_weight"] * parts["visibility_loss"])
    return {"loss": total, **parts}

  def predictions(self, outputs: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Model outputs -> pixel predictions: label [N], score [N], box [N, 4] (and keypoints [N, K, 3] with the
    visibility probability as third column)."""
    scale = self._scale()
    probs = jax.nn.softmax(outputs["logits"])
    out = {"pred_label": jnp.argmax(probs, -1).astype(jnp.int32), "pred_score": jnp.max(probs, -1),
           "pred_box": outputs["boxes"] * jnp.tile(scale, 2)}
    if self.use_keypoints:
      out["pred_keypoints"] = jnp.concatenate([outputs["keypoints"] * scale,
                                               jax.nn.sigmoid(outputs["visibility"])[..., None]], -1)
    return out

  def _sums(self, outputs, prepared, losses, weights) -> dict[str, jax.Array]:
    predicted = self.predictions(outputs)
    correct = cls_metrics.correct(outputs["logits"], prepared["label"])
    iou = elementwise_box_iou(predicted["pred_box"], prepared["box"])
    sums = {k: jnp.sum(losses[k] * weights) for k in losses}
    sums.update(accuracy=jnp.sum(correct * weights), box_iou=jnp.sum(iou * weights),
                localization_accuracy=jnp.sum((iou >= 0.5) * correct * weights))
    if self.use_keypoints:
      nme, has_visible = landmark_errors(predicted["pred_keypoints"][..., :2], prepared["keypoints"])
      counted = has_visible * weights
      sums.update(nme=jnp.sum(nme * counted), failures=jnp.sum((nme > FAILURE_NME) * counted),
                  with_keypoints=jnp.sum(counted))
    return sums

  def jittered_boxes(self, rng: jax.Array, boxes: jax.Array) -> jax.Array:
    """Training boxes of the crop classifier: boxes [N, 4] (normalised xyxy) with the centre moved by up to
    `crop_jitter` x the box's longer side and both sides scaled by one factor in exp(+-crop_jitter)."""
    shift_key, scale_key = jax.random.split(rng)
    jitter = self.crop_jitter
    centre, size = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
    longer = jnp.max(size, -1, keepdims=True)
    centre += jax.random.uniform(shift_key, centre.shape, minval=-jitter, maxval=jitter) * longer
    size *= jnp.exp(jax.random.uniform(scale_key, (len(boxes), 1), minval=-jitter, maxval=jitter))
    return jnp.concatenate([centre - size / 2, centre + size / 2], -1)

  # --- Steps ------------------------------------------------------------------------------------------------------
  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs):
    """One update of "model" on the batch mean of `losses`; metrics as in `metric_names` (NME too)."""
    step_rng = state.step_rng()
    prepared = self.prepare(jax.random.fold_in(step_rng, 0), batch, train=True)

    def loss_of(outputs, micro):
      losses = self.losses(outputs, micro)
      return jnp.mean(losses["loss"]), (outputs, losses)

    inputs = (prepared["image"],)
    if self.crop_model:
      inputs += (self.jittered_boxes(jax.random.fold_in(step_rng, 2), prepared["box"] / jnp.tile(self._scale(), 2)),)
    micro = {"inputs": inputs, **{k: v for k, v in prepared.items() if k != "image"}}
    state, (outputs, losses) = base.supervised_update(state, txs, self.model, micro, loss_of,
                                                      jax.random.fold_in(step_rng, 1),
                                                      int(self.config.train.grad_accum_steps), self.config.train.remat)
    count = prepared["image"].shape[0]
    sums = self._sums(outputs, prepared, losses, jnp.ones((count,), jnp.float32))
    metrics = base.weighted_mean_metrics({k: sums[k] for k in self.metric_names}, count)
    if self.use_keypoints:
      metrics["nme"] = sums["nme"] / jnp.maximum(sums["with_keypoints"], 1.0)
    return state, metrics

  def outputs(self, state: TrainState, images: jax.Array) -> dict[str, jax.Array]:
    """Evaluation-mode model outputs of prepared images."""
    return self.model.apply(state.variables("model"), images, train=False)

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Summed statistics of a padded eval batch, plus per-example predictions and inputs for the pictures."""
    prepared = self.prepare(jax.random.PRNGKey(0), batch, train=False)
    outputs = self.outputs(state, prepared["image"])
    weights = batch["mask"].astype(jnp.float32)
    out = self._sums(outputs, prepared, self.losses(outputs, prepared), weights)
    out["count"] = jnp.sum(weights)
    out.update(self.predictions(outputs), image=batch["image"], mask=batch["mask"], label=batch["label"],
               box=batch["boxes"][:, 0])
    if self.use_keypoints:
      out["keypoints"] = batch["keypoints"]
    return out

  def _picture_keys(self) -> tuple[str, ...]:
    keys = ("image", "label", "box", "pred_label", "pred_score", "pred_box")
    return keys + (("keypoints", "pred_keypoints") if self.use_keypoints else ())

  def evaluators(self) -> list[Evaluator]:
    keys = list(self.metric_names) + ["count"]
    if self.use_keypoints:
      keys += ["nme", "failures", "with_keypoints"]
    evaluators: list[Evaluator] = [SumEvaluator(keys, self.reduce_eval)]
    if self.num_pictures:
      evaluators.append(FirstRowsEvaluator(self._picture_keys(), self.num_pictures))
    return evaluators

  def reduce_eval(self, sums: dict[str, np.ndarray]) -> dict[str, Any]:
    """Summed statistics -> metrics (see the module docstring)."""
    count = float(sums["count"])
    metrics: dict[str, Any] = {k: float(sums[k]) / count for k in self.metric_names}
    if self.use_keypoints:
      with_keypoints = max(float(sums["with_keypoints"]), 1.0)
      metrics["nme"] = float(sums["nme"]) / with_keypoints
      metrics["failure_rate"] = float(sums["failures"]) / with_keypoints
    metrics["num_examples"] = int(round(count))
    return metrics

  # --- Pictures and predict ---------------------------------------------------------------------------------------
  def on_evaluation(self, workdir: str, state: TrainState, step: int, metrics: Mapping[str, Any]) -> list[str]:
    """Redraws localization.png after every evaluation during training (from the evaluation's picture rows)."""
    del state, step
    return self.write_reports(workdir, metrics, {})

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """localization.png: the first eval images with the true (solid) and predicted (dashed) box and keypoints."""
    if "picture_image" not in metrics or not len(metrics["picture_image"]):
      return []
    from vision_jax.tasks import localization_pictures  # pylint: disable=import-outside-toplevel
    cells = [{k[len("picture_"):]: np.asarray(v[i]) for k, v in metrics.items() if k.startswith("picture_")}
             for i in range(len(metrics["picture_image"]))]
    path = os.path.join(workdir, "localization.png")
    localization_pictures.plot_grid(cells, path, self.spec.class_names, self.keypoint_names)
    summary["localization_png"] = path
    return [path]

  def eval_mode(self, members, runner) -> list[str]:
    """`--mode=eval`: eval.json and localization.png of the best (else newest) checkpoint."""
    return eval_mode_with_pictures(self, members, runner)

  def predict(self, state: TrainState, paths: Sequence[str]) -> list[str]:
    """Class, box (and keypoints) of image files; each drawn on its image as `<name>_localized.png` beside it."""
    from vision_jax.tasks import classification_eval, localization_pictures  # pylint: disable=import-outside-toplevel
    images = np.stack([classification_eval.read_image(p, tuple(self.spec.image_shape)) for p in paths])

    @jax.jit
    def run(state, images):
      batch = {"image": images, "label": jnp.zeros((len(images),), jnp.int32),
               "boxes": jnp.zeros((len(images), 1, 4), jnp.float32)}
      if self.use_keypoints:
        batch["keypoints"] = jnp.zeros((len(images), self.num_keypoints, 3), jnp.float32)
      return self.predictions(self.outputs(state, self.prepare(jax.random.PRNGKey(0), batch, False)["image"]))

    predicted = jax.device_get(run(state, images))
    lines = []
    for i, path in enumerate(paths):
      cell = {"image": images[i], **{k: np.asarray(v[i]) for k, v in predicted.items()}}
      out = os.path.splitext(path)[0] + "_localized.png"
      Image.fromarray(localization_pictures.draw_prediction(cell, self.spec.class_names)).save(out)
      name = self.spec.class_names[int(cell["pred_label"])]
      box = ", ".join(f"{v:.1f}" for v in cell["pred_box"])
      lines.append(f"{path}: class {name} {float(cell['pred_score']):.3f}, box [{box}]; wrote {out}")
    return lines
