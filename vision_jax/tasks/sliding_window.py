"""A sliding-window detector (task `sliding_window`): a digit/background window classifier trained on crops of
scenes (`digit_scenes`), run over every window position at several scales through its convolutional form.

Training (per image, `sliding_window.crops_per_image` square windows, half around a random true object, half
anywhere): a window's target is the object whose ideal window (the square of side `margin` x the object's longer
side, centred on it) it overlaps with IoU >= `positive_iou`; background below `negative_iou`; ignored between.
Of the windows around objects, the fraction `hard_fraction` strays four times as far (centre up to 0.48 x the
side away, side scaled by up to exp(+-0.6)): mostly windows on part of a digit or beside it, which are
background or box-regression examples the close windows and the free ones rarely give.
With `mined_negatives` = k > 0, each step also runs the convolutional form (current weights, no gradient) over
the batch's scenes at every scale and adds, per scene, the k best-scoring windows that are background by the rule
above (online bootstrapping of hard negatives, Dalal & Triggs 2005; Shrivastava et al. 2016), static shapes.
Windows are cut with RoIAlign (aligned, adaptive sampling), with the model's `context` ring around them, to crops
of side 28 + 2 x context. Loss: cross-entropy over the digit classes plus background, plus `box_weight` x
smooth-L1 of the box code (`models.detectors.sliding_window`) on object windows, plus, for a model with
`iou_output`, `iou_weight` x the binary cross-entropy of the predicted IoU against the window's best IoU with an
ideal window (every window).

Detection: for each window side s of `window_sides` the image is resized by 28 / s, the convolutional form
scores every window at stride 4 (of the resized image), each window gets its best digit class and its regressed
box (score: the digit probability, times the predicted IoU for a model with `iou_output`); with context the
resized image is padded by `context` zeros (RoIAlign's value outside the image in training); the `pre_nms` best
windows of all scales go through NMS (IoU `nms_iou`, class-agnostic unless `class_aware`) to `max_detections`
padded detections, valid above `score_threshold`. Metrics: COCO AP, AP50, ... (`coco_detection_metrics`);
detections.png shows eval scenes, truth beside predictions.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from PIL import Image

from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation.evaluators import Evaluator, GatherEvaluator, coco_detection_metrics
from vision_jax.losses.classification import cross_entropy
from vision_jax.losses.localization import box_smooth_l1
from vision_jax.models.detectors import sliding_window as sw
from vision_jax.ops.boxes import box_iou
from vision_jax.ops.nms import batched_nms, nms
from vision_jax.ops.roi_align import roi_align
from vision_jax.tasks import base
from vision_jax.tasks.detection import PICTURE_SCORE
from vision_jax.tasks.localization import FirstRowsEvaluator, eval_mode_with_pictures
from vision_jax.train_lib.state import TrainState

HARD_SPREAD = 4.0  # jitter of the hard windows around objects, in multiples of the close windows' jitter
DEFAULTS = {"crops_per_image": 16, "hard_fraction": 0.0, "window_sides": "20,28,40,56", "margin": 1.25,
            "positive_iou": 0.5, "negative_iou": 0.3, "box_weight": 1.0, "score_threshold": 0.05, "nms_iou": 0.45,
            "class_aware": False, "pre_nms": 300, "max_detections": 20, "pictures": 8, "mined_negatives": 0,
            "iou_weight": 1.0}
DETECTION_KEYS = ("pred_boxes", "pred_scores", "pred_labels", "pred_valid")


def ideal_windows(boxes: jax.Array, margin: float) -> jax.Array:
  """Squares [..., 4] of side margin * max(w, h) centred on xyxy boxes [..., 4]."""
  half = margin * jnp.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]) / 2
  cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
  return jnp.stack([cx - half, cy - half, cx + half, cy + half], -1)


@base.register("sliding_window")
class SlidingWindowTask(base.Task):
  """Sliding-window detection with a window classifier and its convolutional form (see the module docstring)."""

  best_metric = ("AP50", "max")
  curve_metrics = ("loss", "class_loss", "box_loss", "window_accuracy", "AP", "AP50")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    if "boxes" not in spec.extra_features or "box_labels" not in spec.features:
      raise ConfigError(f"task 'sliding_window' needs boxes and box_labels; dataset {spec.name!r} has none: use "
                        "digit_scenes or another detection dataset")
    given = config.get("sliding_window") or {}
    self.settings = {k: type(d)(given.get(k, d)) for k, d in DEFAULTS.items()}
    self.sides = tuple(float(s) for s in str(self.settings["window_sides"]).split(",") if s.strip())
    if not self.sides or min(self.sides) <= 0:
      raise ConfigError(f"sliding_window.window_sides={self.settings['window_sides']!r}: give positive window sides "
                        "in image pixels, e.g. 20,28,40,56")
    self.num_classes = spec.features["box_labels"].num_classes
    self.class_names = tuple(spec.features["box_labels"].class_names) or tuple(map(str, range(self.num_classes)))
    self.input_ops = base.InputOps(config.input)
    self.input_shape = self.input_ops.output_shape(spec.image_shape)
    kwargs = dict(config.model.get("kwargs") or {})
    if int(kwargs.get("context", 0)) < 0 or int(kwargs.get("context", 0)) % 2:
      raise ConfigError(f"model.kwargs.context={kwargs['context']}: give an even number of pixels >= 0, e.g. 8")
    self.model = sw.WindowClassifier(self.num_classes, **kwargs)
    self.crop_size = sw.crop_size(self.model.context)
    self.conv_model = sw.ConvolutionalWindowNet(self.num_classes, **kwargs)

  def networks(self):
    return {"model": self.model}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    return (jnp.zeros((1, self.crop_size, self.crop_size, self.input_shape[-1]), jnp.float32),)

  def identity(self) -> dict[str, Any]:
    return {"num_classes": self.num_classes}

  # --- Training ---------------------------------------------------------------------------------------------------
  def sample_windows(self, rng: jax.Array, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Training windows and their targets.

    Returns:
      windows [N, S, 4] xyxy squares, labels [N, S] (num_classes = background), weights [N, S] (0: ignored),
      positive [N, S], box_codes [N, S, 4] (the matched object's box relative to the window) and iou [N, S] (the
      best IoU with an object's ideal window).
    """
    boxes, labels = batch["boxes"].astype(jnp.float32), batch["box_labels"]
    n, m = labels.shape
    valid = (jnp.arange(m)[None] < batch["num_objects"][:, None]) & (labels >= 0)
    ideal = ideal_windows(boxes, self.settings["margin"])
    count = self.settings["crops_per_image"]
    half = count // 2
    hard = int(round(half * self.settings["hard_fraction"]))
    keys = jax.random.split(rng, 6)
    pick = jax.random.categorical(keys[0], jnp.where(valid, 0.0, -1e9), shape=(half, n)).T  # [N, half]
    around = jnp.take_along_axis(ideal, pick[..., None], 1)
    # The first half - hard windows sit close to the ideal window; the hard ones stray further (partial digits,
    # neighbours, too large or small), the windows that otherwise turn into confident false positives.
    spread = jnp.where(jnp.arange(half) < half - hard, 1.0, HARD_SPREAD)
    side = (around[..., 2] - around[..., 0]) * jnp.exp(spread * jax.random.uniform(keys[1], (n, half), minval=-0.15,
                                                                                   maxval=0.15))
    centre = (around[..., :2] + around[..., 2:]) / 2 + (spread[:, None] * jax.random.uniform(
        keys[2], (n, half, 2), minval=-0.12, maxval=0.12)) * side[..., None]
    height, width = self.input_shape[:2]
    rest = count - half
    low, high = min(self.sides), max(self.sides) * 1.1
    free_side = jnp.exp(jax.random.uniform(keys[3], (n, rest), minval=np.log(low), maxval=np.log(high)))
    corner = jax.random.uniform(keys[4], (n, rest, 2)) * (jnp.array([width, height]) - free_side[..., None] / 2)
    corner -= free_side[..., None] / 4
    windows = jnp.concatenate([jnp.concatenate([centre - side[..., None] / 2, centre + side[..., None] / 2], -1),
                               jnp.concatenate([corner, corner + free_side[..., None]], -1)], 1)
    best, match = self._best_ideal(windows, ideal, valid)
    positive = best >= self.settings["positive_iou"]
    matched_labels = jnp.take_along_axis(labels, match, 1)
    target_labels = jnp.where(positive, matched_labels, self.num_classes)
    weights = (positive | (best < self.settings["negative_iou"])).astype(jnp.float32)
    codes = sw.encode_boxes(jnp.take_along_axis(boxes, match[..., None], 1), windows)
    return {"windows": windows, "labels": target_labels.astype(jnp.int32), "weights": weights,
            "positive": positive.astype(jnp.float32), "box_codes": codes, "iou": best}

  @staticmethod
  def _best_ideal(windows: jax.Array, ideal: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Best IoU [N, S] of windows [N, S, 4] with the valid ([N, M]) ideal windows [N, M, 4], and its index."""
    iou = jax.vmap(box_iou)(windows, jnp.where(valid[..., None], ideal, 0.0))  # [N, S, M]
    iou = jnp.where(valid[:, None, :], iou, 0.0)
    return jnp.max(iou, -1), jnp.argmax(iou, -1)

  def mine_negatives(self, params: Any, images: jax.Array, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """The `mined_negatives` best-scoring background windows of each scene under the current weights, as targets
    in the form of `sample_windows` (windows [N, k, 4], labels background, weights 1, ...)."""
    k = self.settings["mined_negatives"]
    dense = jax.lax.stop_gradient(self.dense_windows(params, images))
    labels = batch["box_labels"]
    valid = (jnp.arange(labels.shape[1])[None] < batch["num_objects"][:, None]) & (labels >= 0)
    ideal = ideal_windows(batch["boxes"].astype(jnp.float32), self.settings["margin"])
    best, _ = self._best_ideal(dense["windows"], ideal, valid)
    background = best < min(self.settings["negative_iou"], self.settings["positive_iou"])
    _, top = jax.lax.top_k(jnp.where(background, dense["scores"], -1.0), k)
    windows = jnp.take_along_axis(dense["windows"], top[..., None], 1)
    n = labels.shape[0]
    return {"windows": windows, "labels": jnp.full((n, k), self.num_classes, jnp.int32),
            "weights": jnp.ones((n, k)), "positive": jnp.zeros((n, k)), "box_codes": jnp.zeros((n, k, 4)),
            "iou": jnp.take_along_axis(best, top, 1)}

  def crops(self, images: jax.Array, windows: jax.Array) -> jax.Array:
    """Model-input images [N, H, W, C] and windows [N, S, 4] -> crops [N * S, c, c, C] of the windows with the
    model's context ring around them (c = 28 + 2 x context, RoIAlign)."""
    n, s = windows.shape[:2]
    index = jnp.repeat(jnp.arange(n), s)
    centre, half = (windows[..., :2] + windows[..., 2:]) / 2, (windows[..., 2:] - windows[..., :2]) / 2
    half = half * (self.crop_size / sw.WINDOW)
    boxes = jnp.concatenate([centre - half, centre + half], -1)
    return roi_align(images, boxes.reshape(-1, 4), index, (self.crop_size, self.crop_size), sampling_ratio=-1,
                     aligned=True, max_sampling_ratio=3)

  def window_losses(self, outputs: Mapping[str, jax.Array], targets: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-window losses [W] and correctness from outputs of flattened windows and `sample_windows` targets."""
    labels = targets["labels"].reshape(-1)
    weights, positive = targets["weights"].reshape(-1), targets["positive"].reshape(-1)
    class_loss = cross_entropy(outputs["logits"], labels) * weights
    box_loss = box_smooth_l1(outputs["box"], targets["box_codes"].reshape(-1, 4), 0.1) * positive
    correct = (jnp.argmax(outputs["logits"], -1) == labels).astype(jnp.float32) * weights
    parts = {"class_loss": class_loss, "box_loss": box_loss, "correct": correct, "weights": weights,
             "positive": positive}
    if "iou" in outputs:
      parts["iou_loss"] = optax.sigmoid_binary_cross_entropy(outputs["iou"], targets["iou"].reshape(-1))
    return parts

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs):
    """One update of the window classifier on windows sampled from the batch's scenes."""
    rng = state.step_rng()
    images = self.input_ops(jax.random.fold_in(rng, 0), batch["image"], train=True)
    targets = self.sample_windows(jax.random.fold_in(rng, 1), batch)
    if self.settings["mined_negatives"] > 0:
      mined = self.mine_negatives(state.params["model"], images, batch)
      targets = {k: jnp.concatenate([v, mined[k]], 1) for k, v in targets.items()}
    crops = self.crops(images, targets["windows"])
    box_weight, iou_weight = self.settings["box_weight"], self.settings["iou_weight"]

    def summed_loss(parts):
      total = jnp.sum(parts["class_loss"]) + box_weight * jnp.sum(parts["box_loss"])
      return total + (iou_weight * jnp.sum(parts["iou_loss"]) if "iou_loss" in parts else 0.0)

    def loss_of(outputs, micro):
      parts = self.window_losses(outputs, micro["targets"])
      return summed_loss(parts) / jnp.maximum(jnp.sum(parts["weights"]), 1.0), parts

    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in targets.items()}
    state, parts = base.supervised_update(state, txs, self.model, {"inputs": (crops,), "targets": flat}, loss_of,
                                          jax.random.fold_in(rng, 2), int(self.config.train.grad_accum_steps),
                                          self.config.train.remat)
    used = jnp.maximum(jnp.sum(parts["weights"]), 1.0)
    metrics = {"class_loss": jnp.sum(parts["class_loss"]) / used,
               "box_loss": jnp.sum(parts["box_loss"]) / jnp.maximum(jnp.sum(parts["positive"]), 1.0),
               "window_accuracy": jnp.sum(parts["correct"]) / used,
               "positive_fraction": jnp.sum(parts["positive"]) / parts["positive"].shape[0]}
    if "iou_loss" in parts:
      metrics["iou_loss"] = jnp.mean(parts["iou_loss"])
    metrics["loss"] = summed_loss(parts) / used
    return state, metrics

  # --- Detection --------------------------------------------------------------------------------------------------
  def dense_windows(self, params: Any, images: jax.Array) -> dict[str, jax.Array]:
    """Every window of every scale through the convolutional form: windows [N, P, 4] and regressed boxes [N, P, 4]
    (image pixels), scores [N, P] (best digit probability, times the predicted IoU with `iou_output`) and labels
    [N, P]."""
    conv_params = sw.to_convolutional(params)
    n, height, width, channels = images.shape
    context = self.model.context
    found: dict[str, list[jax.Array]] = {"windows": [], "boxes": [], "scores": [], "labels": []}
    for side in self.sides:
      size = (max(sw.WINDOW, round(height * sw.WINDOW / side)), max(sw.WINDOW, round(width * sw.WINDOW / side)))
      resized = jax.image.resize(images, (n,) + size + (channels,), "linear")
      padded = jnp.pad(resized, ((0, 0), (context, context), (context, context), (0, 0)))
      out = self.conv_model.apply({"params": conv_params}, padded)
      rows, cols = out["logits"].shape[1:3]
      ys, xs = jnp.meshgrid(jnp.arange(rows) * sw.STRIDE, jnp.arange(cols) * sw.STRIDE, indexing="ij")
      scale = jnp.array([width / size[1], height / size[0]] * 2, jnp.float32)
      windows = jnp.stack([xs, ys, xs + sw.WINDOW, ys + sw.WINDOW], -1).astype(jnp.float32) * scale
      windows = jnp.broadcast_to(windows, out["box"].shape)
      probs = jax.nn.softmax(out["logits"].astype(jnp.float32))[..., :self.num_classes]
      scores = jnp.max(probs, -1)
      if "iou" in out:
        scores = scores * jax.nn.sigmoid(out["iou"].astype(jnp.float32))
      found["windows"].append(windows.reshape(n, -1, 4))
      found["boxes"].append(sw.decode_boxes(out["box"], windows).reshape(n, -1, 4))
      found["scores"].append(scores.reshape(n, -1))
      found["labels"].append(jnp.argmax(probs, -1).reshape(n, -1).astype(jnp.int32))
    return {k: jnp.concatenate(v, 1) for k, v in found.items()}

  def detect(self, params: Any, images: jax.Array) -> dict[str, jax.Array]:
    """Model-input images [N, H, W, C] -> padded detections pred_boxes [N, D, 4], pred_scores, pred_labels,
    pred_valid [N, D]."""
    dense = self.dense_windows(params, images)
    boxes, scores, labels = dense["boxes"], dense["scores"], dense["labels"]
    height, width = images.shape[1:3]
    boxes = jnp.clip(boxes, 0.0, jnp.array([width, height, width, height], jnp.float32))
    top_scores, top = jax.lax.top_k(scores, min(self.settings["pre_nms"], scores.shape[1]))
    top_boxes = jnp.take_along_axis(boxes, top[..., None], 1)
    top_labels = jnp.take_along_axis(labels, top, 1)
    limit, iou, threshold = self.settings["max_detections"], self.settings["nms_iou"], self.settings["score_threshold"]
    if self.settings["class_aware"]:
      keep, _ = jax.vmap(lambda b, s, c: batched_nms(b, s, c, iou, limit, threshold))(top_boxes, top_scores, top_labels)
    else:
      keep, _ = jax.vmap(lambda b, s: nms(b, s, iou, limit, threshold))(top_boxes, top_scores)
    index = jnp.maximum(keep, 0)
    return {"pred_boxes": jnp.take_along_axis(top_boxes, index[..., None], 1),
            "pred_scores": jnp.where(keep >= 0, jnp.take_along_axis(top_scores, index, 1), 0.0),
            "pred_labels": jnp.take_along_axis(top_labels, index, 1), "pred_valid": keep >= 0}

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Detections of a padded eval batch with its ground truth (for COCO metrics) and images (for pictures)."""
    images = self.input_ops(jax.random.PRNGKey(0), batch["image"], train=False)
    out = self.detect(state.params["model"], images)
    out.update({k: batch[k] for k in ("image", "boxes", "box_labels", "num_objects", "mask")})
    return out

  def evaluators(self) -> list[Evaluator]:
    keys = DETECTION_KEYS + ("boxes", "box_labels", "num_objects")
    evaluators: list[Evaluator] = [GatherEvaluator(keys, self.reduce_eval)]
    if self.settings["pictures"]:
      evaluators.append(FirstRowsEvaluator(("image",) + keys, self.settings["pictures"]))
    return evaluators

  @staticmethod
  def reduce_eval(rows: dict[str, np.ndarray]) -> dict[str, Any]:
    """COCO box metrics of all eval images, and their count."""
    return {**coco_detection_metrics(rows), "num_examples": int(len(rows["boxes"]))}

  # --- Pictures and predict ---------------------------------------------------------------------------------------
  def on_evaluation(self, workdir: str, state: TrainState, step: int, metrics: Mapping[str, Any]) -> list[str]:
    """Redraws detections.png after every evaluation during training (from the evaluation's picture rows)."""
    del state, step
    return self.write_reports(workdir, metrics, {})

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """detections.png: eval scenes, the truth (left) beside the detections scoring at least
    `detection.PICTURE_SCORE` (right; the metrics count every valid one)."""
    if "picture_image" not in metrics or not len(metrics["picture_image"]):
      return []
    from vision_jax.tasks import localization_pictures  # pylint: disable=import-outside-toplevel
    rows = {k[len("picture_"):]: np.asarray(v) for k, v in metrics.items() if k.startswith("picture_")}
    path = os.path.join(workdir, "detections.png")
    localization_pictures.plot_detections(rows, path, self.class_names, min_score=PICTURE_SCORE)
    summary["detections_png"] = path
    return [path]

  def eval_mode(self, members, runner) -> list[str]:
    """`--mode=eval`: eval.json and detections.png of the best (else newest) checkpoint."""
    return eval_mode_with_pictures(self, members, runner)

  def predict(self, state: TrainState, paths: Sequence[str]) -> list[str]:
    """Detections of image files, those scoring at least `PICTURE_SCORE` drawn on each as `<name>_detections.png`
    beside it."""
    from vision_jax.tasks import classification_eval, localization_pictures  # pylint: disable=import-outside-toplevel
    images = np.stack([classification_eval.read_image(p, tuple(self.spec.image_shape)) for p in paths])
    run = jax.jit(lambda params, x: self.detect(params, self.input_ops(jax.random.PRNGKey(0), x, train=False)))
    found = jax.device_get(run(state.params["model"], images))
    lines = []
    for i, path in enumerate(paths):
      valid = np.flatnonzero(found["pred_valid"][i])
      out = os.path.splitext(path)[0] + "_detections.png"
      drawn = valid[found["pred_scores"][i][valid] >= PICTURE_SCORE]
      picture = localization_pictures.draw_detections(images[i], found["pred_boxes"][i][drawn],
                                                      found["pred_labels"][i][drawn], found["pred_scores"][i][drawn],
                                                      self.class_names)
      Image.fromarray(picture).save(out)
      shown = ", ".join(f"{self.class_names[found['pred_labels'][i][j]]} {found['pred_scores'][i][j]:.2f}"
                        for j in valid[:5])
      lines.append(f"{path}: {len(valid)} detections ({shown}); wrote {out}")
    return lines
