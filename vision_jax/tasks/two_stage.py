"""Two-stage detection (`config.task = "two_stage"`): Faster R-CNN (one stride-16 level or an FPN) and Mask R-CNN
(RoIAlign or RoIPool mask branch) trained end to end with torchvision's semantics and static shapes.

Train step, in one jit: features -> RPN logits/deltas on the anchors of the padded size -> RPN loss on balanced
samples of anchors (`rpn.batch_size_per_image`, half positive) -> `filter_proposals` on stopped gradients (train
pre/post-NMS top-n) -> ground truth appended to the proposals, matched at 0.5 and sampled (`box_batch_size` per
image, a quarter positive) by `roi_head_targets` -> `fastrcnn_loss` -> with masks, the mask branch on up to
`mask_rois_per_image` of the sampled positives (a random subset; torchvision uses all of them) scored by
`maskrcnn_loss` against `project_masks_on_boxes` targets. Every sampler draws from `state.step_rng()`.

Eval step: `detect` (proposals with the test top-n, postprocessing, padded detections), masks pasted into the
image and thresholded at 0.5, bit-packed for gathering. Metrics: box COCO AP/AP50/AP75/AR and VOC AP50
(`detection_metrics`) and, with masks, mask AP/AP50 (`two_stage_masks`). The best checkpoint is kept by AP50.

Reports: eval_detections.png (as the `detection` task) and, with masks, eval_masks.png. `--mode=predict` writes
`<image>.detections.png` and one COCO-format `detections.json` (RLE masks when the model has them).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation.evaluators import Evaluator, SumEvaluator
from vision_jax.losses.rcnn_heads import RoITargets, fastrcnn_loss, maskrcnn_loss, roi_head_targets
from vision_jax.losses.rpn import rpn_loss
from vision_jax.models.detectors.rcnn import RCNN, SMALL
from vision_jax.models.detectors.rcnn.inference import InferenceConfig, detect
from vision_jax.ops.anchors import rcnn_anchors, rcnn_anchors_per_level
from vision_jax.ops.masks import paste_masks_in_image
from vision_jax.ops.proposals import filter_proposals
from vision_jax.tasks import base, detection, two_stage_masks
from vision_jax.train_lib.state import TrainState

VARIANTS = {  # variant -> RCNN arguments
    "faster": dict(levels="c4", mask=False),
    "fpn": dict(levels="fpn", mask=False),
    "mask": dict(levels="fpn", mask=True, mask_pool="roi_align"),
    "mask_roipool": dict(levels="fpn", mask=True, mask_pool="roi_pool"),
}


def default_config(variant: str, **overrides: Any) -> ml_collections.ConfigDict:
  """The `config.rcnn` section for `variant` (faster | fpn | mask | mask_roipool), updated by `overrides`.

  Keys: variant; preset ("small": `rcnn.SMALL`; "resnet50": torchvision's sizes); anchor_sizes (per FPN level,
  or the sizes of the single C4 level), aspect_ratios; rpn_batch_size, rpn_positive_fraction, rpn_pre_nms_train,
  rpn_post_nms_train, rpn_pre_nms_test, rpn_post_nms_test, rpn_nms; box_batch_size, box_positive_fraction;
  mask_rois_per_image; box_score_thresh, box_nms, detections_per_img; num_pictures; predict_dir.
  """
  if variant not in VARIANTS:
    raise ConfigError(f"unknown rcnn variant {variant!r}; choose one of {', '.join(VARIANTS)}")
  fpn = VARIANTS[variant]["levels"] == "fpn"
  section = ml_collections.ConfigDict({
      "variant": variant, "preset": "small",
      "anchor_sizes": ((12,), (24,), (48,), (96,), (192,)) if fpn else ((12, 24, 48),),
      "aspect_ratios": (0.5, 1.0, 2.0),
      "rpn_batch_size": 256, "rpn_positive_fraction": 0.5, "rpn_pre_nms_train": 600, "rpn_post_nms_train": 300,
      "rpn_pre_nms_test": 300, "rpn_post_nms_test": 100, "rpn_nms": 0.7,
      "box_batch_size": 64, "box_positive_fraction": 0.25, "mask_rois_per_image": 8,
      "box_score_thresh": 0.05, "box_nms": 0.5, "detections_per_img": 25, "num_pictures": 8, "predict_dir": ""})
  section.update(overrides)
  return section


def pack_masks(masks: jax.Array) -> jax.Array:
  """Bool masks [..., H, W] -> uint8 bits [..., H * W / 8] (np.packbits order: first pixel in the high bit)."""
  flat = masks.reshape(*masks.shape[:-2], -1, 8).astype(jnp.uint8)
  return jnp.sum(flat * jnp.asarray([128, 64, 32, 16, 8, 4, 2, 1], jnp.uint8), axis=-1, dtype=jnp.uint8)


@base.register("two_stage")
class TwoStageTask(detection.DetectionTask):
  """Faster/Mask R-CNN; config section `rcnn` (`default_config`). Inherits `prepare`, reports and eval mode from
  the single-shot `detection` task.

  Args:
    config: the experiment config.
    spec: the training split's spec; boxes, box_labels and num_objects (and instance_masks for Mask R-CNN).
  """

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):  # pylint: disable=super-init-not-called
    base.Task.__init__(self, config, spec)
    self.num_classes, self.class_names = detection.detection_classes(spec, "two_stage")
    self.cfg = config.rcnn
    arch = VARIANTS.get(self.cfg.variant)
    if arch is None:
      raise ConfigError(f"unknown rcnn.variant {self.cfg.variant!r}; choose one of {', '.join(VARIANTS)}")
    self.with_masks = bool(arch["mask"])
    if int(config.train.grad_accum_steps) != 1 or str(config.train.remat) not in ("", "none"):
      raise ConfigError("task 'two_stage' trains in one plain step (RPN sampling spans the whole batch): set "
                        "train.grad_accum_steps=1 and train.remat=none; lower input.batch_size to save memory")
    if self.with_masks and "instance_masks" not in spec.features:
      raise ConfigError(f"rcnn.variant={self.cfg.variant!r} needs instance_masks; dataset {spec.name!r} has none: "
                        "use variant=fpn or faster, or a dataset with instance masks (digit_scenes, coco)")
    if self.with_masks and (str(config.input.augment) or int(config.input.image_size) > 0):
      raise ConfigError("Mask R-CNN here does not move instance masks with input.augment or input.image_size: "
                        "leave both empty/0")
    self.input_ops = base.InputOps(config.input)
    stored = tuple(spec.image_shape)
    if 0 in stored[:2] and int(config.input.image_size) > 0:
      stored = (int(config.input.image_size),) * 2 + stored[2:]
    self.input_shape = self.input_ops.output_shape(stored)
    self.image_size = tuple(int(v) for v in self.input_shape[:2])
    if tuple(self.input_shape[:2]) != stored[:2] or any(v % 32 for v in self.image_size):
      raise ConfigError(f"two_stage needs inputs of the stored size with sides divisible by 32; got "
                        f"{self.image_size}: resize with input.image_size (e.g. 64, 96, 800)")
    preset = dict(SMALL) if self.cfg.preset == "small" else {}
    preset.update(num_classes=self.num_classes + 1, num_anchors=self._anchors_per_location(), **arch,
                  **base.compute_dtype(config))
    self.model = RCNN(**preset)
    self.feature_sizes = self._feature_sizes()
    sizes = tuple(tuple(float(v) for v in s) for s in self.cfg.anchor_sizes)
    ratios = (tuple(float(v) for v in self.cfg.aspect_ratios),) * len(sizes)
    if len(sizes) != len(self.feature_sizes):
      raise ConfigError(f"rcnn.anchor_sizes has {len(sizes)} levels but variant {self.cfg.variant!r} has "
                        f"{len(self.feature_sizes)} feature maps: give one tuple of sizes per level")
    self.anchors = rcnn_anchors(self.image_size, self.feature_sizes, sizes, ratios)
    self.anchors_per_level = rcnn_anchors_per_level(self.feature_sizes, sizes, ratios)
    self.inference = InferenceConfig(
        anchor_sizes=sizes, aspect_ratios=ratios, rpn_pre_nms_top_n=int(self.cfg.rpn_pre_nms_test),
        rpn_post_nms_top_n=int(self.cfg.rpn_post_nms_test), rpn_nms_thresh=float(self.cfg.rpn_nms),
        box_score_thresh=float(self.cfg.box_score_thresh), box_nms_thresh=float(self.cfg.box_nms),
        detections_per_img=int(self.cfg.detections_per_img))

  def _anchors_per_location(self) -> int:
    counts = {len(s) * len(self.cfg.aspect_ratios) for s in self.cfg.anchor_sizes}
    if len(counts) != 1:
      raise ConfigError(f"rcnn.anchor_sizes {self.cfg.anchor_sizes} give different anchor counts per level: use "
                        "the same number of sizes on every level")
    return counts.pop()

  def _feature_sizes(self) -> list[tuple[int, int]]:
    h, w = self.image_size
    strides = (16,) if self.model.levels == "c4" else (4, 8, 16, 32, 64)
    return [(-(-h // s), -(-w // s)) for s in strides]

  def networks(self) -> dict[str, nn.Module]:
    return {"model": self.model}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    return (jnp.zeros((1,) + tuple(self.input_shape), jnp.float32),)

  def identity(self) -> dict[str, Any]:
    return {"num_classes": self.num_classes, "variant": self.cfg.variant,
            "anchor_sizes": [list(s) for s in self.cfg.anchor_sizes]}

  # --- Training ------------------------------------------------------------------------------------------------
  def losses(self, variables: dict[str, Any], images: jax.Array, boxes: jax.Array, labels: jax.Array,
             valid: jax.Array, masks: jax.Array | None, rng: jax.Array) -> tuple[dict[str, jax.Array], Any]:
    """The Faster/Mask R-CNN losses of a prepared batch (see the module docstring).

    Args:
      variables: the model's variables.
      images: [N, H, W, C] model inputs.
      boxes: [N, M, 4] xyxy ground truth.
      labels: [N, M] dataset classes 0..C-1 (the model's are 1..C).
      valid: [N, M] bool.
      masks: [N, M, H, W] instance masks (Mask R-CNN) or None.
      rng: key of the samplers.

    Returns:
      ({"loss", "rpn_objectness", "rpn_box", "classifier", "box_reg"[, "mask"]} scalars, batch_stats updates).
    """
    cfg, model = self.cfg, self.model
    feats, updates = model.apply(variables, images, train=True, method=RCNN.features, mutable=["batch_stats"])
    objectness, deltas = model.apply(variables, feats, method=RCNN.rpn)
    rpn_obj, rpn_box = rpn_loss(objectness, deltas, self.anchors, boxes, valid, key=jax.random.fold_in(rng, 0),
                                batch_size_per_image=int(cfg.rpn_batch_size),
                                positive_fraction=float(cfg.rpn_positive_fraction))
    targets = self.sample_rois(objectness, deltas, boxes, labels, valid, jax.random.fold_in(rng, 1))
    class_logits, box_deltas = model.apply(variables, feats, targets.proposals, method=RCNN.box_branch)
    classifier, box_reg = fastrcnn_loss(class_logits, box_deltas, targets.labels, targets.regression_targets,
                                        targets.sampled)
    parts = {"rpn_objectness": rpn_obj, "rpn_box": rpn_box, "classifier": classifier, "box_reg": box_reg}
    if masks is not None:
      positive = targets.sampled & (targets.labels > 0)
      k = min(int(cfg.mask_rois_per_image), positive.shape[1])
      priority = jnp.where(positive, jax.random.uniform(jax.random.fold_in(rng, 2), positive.shape), 2.0)
      rows = jnp.argsort(priority, axis=1)[:, :k]
      take = lambda x: jnp.take_along_axis(x, rows.reshape(rows.shape + (1,) * (x.ndim - 2)), axis=1)
      mask_boxes = take(targets.proposals)
      mask_logits = model.apply(variables, feats, mask_boxes, method=RCNN.mask_branch)
      parts["mask"] = maskrcnn_loss(mask_logits, mask_boxes, masks, labels + 1, take(targets.matched_idxs),
                                    take(positive))
    parts["loss"] = sum(parts.values())
    return parts, updates.get("batch_stats")

  def sample_rois(self, objectness: jax.Array, deltas: jax.Array, boxes: jax.Array, labels: jax.Array,
                  valid: jax.Array, rng: jax.Array) -> RoITargets:
    """Training RoIs: `filter_proposals` of the (gradient-stopped) RPN outputs with the train top-n, the ground
    truth appended, matched at 0.5 and sampled (`box_batch_size` per image, `box_positive_fraction` positive).

    Args:
      objectness: [N, A] RPN logits.
      deltas: [N, A, 4] RPN deltas.
      boxes: [N, M, 4] ground truth.
      labels: [N, M] dataset classes 0..C-1.
      valid: [N, M] bool.
      rng: sampling key (one per image is split from it).

    Returns:
      `RoITargets` with [N, box_batch_size, ...] rows; labels are the model's classes (dataset class + 1, 0 background).
    """
    cfg = self.cfg
    image_size = jnp.asarray(self.image_size, jnp.int32)
    proposals, _, proposal_valid = jax.vmap(lambda d, o: filter_proposals(
        self.anchors, d, o, image_size, self.anchors_per_level, int(cfg.rpn_pre_nms_train),
        int(cfg.rpn_post_nms_train), float(cfg.rpn_nms)))(jax.lax.stop_gradient(deltas),
                                                          jax.lax.stop_gradient(objectness))
    keys = jax.random.split(rng, objectness.shape[0])
    return jax.vmap(lambda p, pv, b, l, v, k: roi_head_targets(
        p, pv, b, l, v, key=k, batch_size_per_image=int(cfg.box_batch_size),
        positive_fraction=float(cfg.box_positive_fraction)))(proposals, proposal_valid, boxes, labels + 1, valid,
                                                             keys)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs) -> tuple[TrainState, base.Metrics]:
    """One update of "model" on the summed RPN, box-head (and mask) losses of the batch."""
    rng = state.step_rng()
    images, boxes, labels, valid = self.prepare(jax.random.fold_in(rng, 0), batch, True)
    masks = batch["instance_masks"] if self.with_masks else None
    batch_stats = state.batch_stats["model"]

    def loss_fn(params):
      variables = {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}
      parts, updates = self.losses(variables, images, boxes, labels, valid, masks, jax.random.fold_in(rng, 1))
      return parts["loss"], (parts, updates)

    grads, (parts, updates) = jax.grad(loss_fn, has_aux=True)(state.params["model"])
    state = state.apply_gradients("model", grads, txs["model"], batch_stats=updates if batch_stats else None)
    return state, parts

  # --- Evaluation ----------------------------------------------------------------------------------------------
  def detect(self, variables: Any, images: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
    """Model inputs [N, H, W, C] -> (raw `detect` outputs, padded detections pred_* [N, D, ...] with dataset
    classes; with masks also pred_masks [N, D, H, W] bool, the pasted probabilities above 0.5)."""
    n = images.shape[0]
    sizes = jnp.broadcast_to(jnp.asarray(self.image_size, jnp.int32), (n, 2))
    out = detect(self.model, variables, images, sizes, self.inference)
    valid = jnp.arange(out["labels"].shape[1])[None] < out["count"][:, None]
    preds = {"pred_boxes": out["boxes"], "pred_scores": out["scores"],
             "pred_labels": jnp.where(valid, out["labels"] - 1, -1), "pred_valid": valid}
    if self.with_masks:
      paste = functools.partial(paste_masks_in_image, image_size=self.image_size)
      probs = jax.vmap(paste)(out["mask_probs"], out["boxes"])
      preds["pred_masks"] = (probs > 0.5) & valid[:, :, None, None]
    return out, preds

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Padded detections (masks bit-packed), truth and the images (for pictures); no loss (it needs sampling)."""
    images = self.prepare(jax.random.PRNGKey(0), batch, False)[0]
    _, out = self.detect(state.variables("model"), images)
    out["count"] = jnp.sum(batch["mask"].astype(jnp.float32))
    if self.with_masks:
      out["pred_mask_bits"] = pack_masks(out.pop("pred_masks"))
      out["truth_mask_bits"] = pack_masks(batch["instance_masks"] > 0)
    out.update({k: batch[k] for k in detection.TRUTH_KEYS + ("mask", "image")})
    return out

  def evaluators(self) -> list[Evaluator]:
    pictures = int(self.cfg.num_pictures)
    if self.with_masks:
      gather = two_stage_masks.MaskDetectionEvaluator(self.image_size, pictures)
    else:
      gather = detection.DetectionEvaluator(detection.detection_metrics, pictures)
    return [gather, SumEvaluator(("count",), lambda t: {"num_examples": int(round(float(t["count"])))})]

  # --- Pictures and modes --------------------------------------------------------------------------------------
  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """eval_detections.png (predictions beside truth) and, with masks, eval_masks.png."""
    paths = super().write_reports(workdir, metrics, summary)
    if "picture_pred_masks" in metrics:
      paths.append(two_stage_masks.write_mask_grid(workdir, metrics, self.class_names, summary))
    return paths
