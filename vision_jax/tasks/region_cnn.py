"""R-CNN and Fast R-CNN on selective-search proposals (`config.task = "region_cnn"`, `config.region_cnn.kind`
"rcnn" or "fast_rcnn"; models in `vision_jax.models.detectors.region_cnn`).

Proposals: selective search (`region_cnn.mode`) of each stored image, computed once on the host and cached as
.npz per (split, index, mode) under `region_cnn.proposal_dir` (`vision_jax.data.proposal_cache`; default
`<dataset.data_dir or the TFDS data dir>/proposals`), the first `region_cnn.num_proposals` of each image padded
with a validity mask. Batches carry images, not indices, so the steps fetch them through a host callback that
recognises each stored image by its pixels. `region_cnn.train_images` / `eval_images` (> 0) restrict training
and evaluation to the first N examples of their splits (other examples of a batch get no loss and are left
out of the metrics); `region_cnn.prebuild` fills the cache of those examples with 2 processes at the first
lookup of each split (reported as `proposal_caching` in summary.json, inside the run's wall time; prefill it
with `python -m vision_jax.data.proposal_cache` to keep it out).

Training (both kinds, as Fast R-CNN's paper): the ground-truth boxes join the proposals; proposals whose best
IoU with the ground truth is below `bg_iou_low` (0.1) are not used; `rois_per_image` RoIs per image are sampled
with at most `positive_fraction` (25%) foreground (IoU >= `fg_iou`, 0.5), the rest background
(`losses.rcnn_heads.roi_head_targets`); the loss is softmax cross-entropy + class-specific smooth-L1 on the
foreground's (10, 10, 5, 5) deltas (`fastrcnn_loss`). R-CNN warps each RoI to a `crop_size` square with context
and runs a CNN on it, on `rois_per_batch` (128) RoIs drawn among those sampled from all the batch's images (the
paper's mini-batch of windows); Fast R-CNN pools every image's RoIs from its one feature map. Evaluation:
per-class decoding, score > `score_threshold`, per-class NMS at `nms_iou`, the best `max_detections`
(`ops.roi_heads.postprocess_detections`), scored with `tasks.detection.detection_metrics` (COCO AP/AP50/AP75/AR,
VOC AP50); pictures as the single-shot detection task's (eval_detections.png) and `--mode=predict` (proposals
computed for each file).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax.data import proposal_cache
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation.evaluators import Evaluator, SumEvaluator
from vision_jax.losses.rcnn_heads import fastrcnn_loss, roi_head_targets
from vision_jax.models.detectors import region_cnn
from vision_jax.ops.boxes import box_iou
from vision_jax.ops.roi_heads import postprocess_detections
from vision_jax.ops.selective_search import MODES
from vision_jax.tasks import base, detection
from vision_jax.train_lib.state import TrainState

KINDS = ("rcnn", "fast_rcnn")


def default_config(kind: str = "fast_rcnn") -> ml_collections.ConfigDict:
  """The `region_cnn` config section for `kind` ("rcnn" or "fast_rcnn")."""
  c = ml_collections.ConfigDict()
  c.kind = kind
  c.mode = "fast"  # selective search mode: single | fast | quality
  c.proposal_dir = ""  # "" -> <dataset.data_dir or the TFDS data dir>/proposals
  c.num_proposals = 100  # P: the best-ranked proposals of each image, padded
  c.train_images = 0  # > 0: train on the first N training examples only; 0: all
  c.eval_images = 0  # > 0: evaluate the first N evaluation examples only; 0: all
  c.prebuild = True  # fill the cache of a split (2 processes) at its first lookup; False: image by image
  c.rois_per_image = 32 if kind == "rcnn" else 64
  c.rois_per_batch = 128 if kind == "rcnn" else 0  # > 0: train on this many of the batch's sampled RoIs (R-CNN's)
  c.positive_fraction = 0.25
  c.fg_iou = 0.5  # foreground at IoU >= this; background below it
  c.bg_iou_low = 0.1  # proposals whose best IoU is below this are not sampled (the paper's [0.1, 0.5) background)
  c.width = 16 if kind == "rcnn" else 32  # first conv's channels
  c.fc_width = 256
  c.crop_size = 32  # rcnn: side of each warped proposal
  c.context = 4  # rcnn: pixels of context on each side of the warped proposal (the paper's 16 of 227)
  c.pool_size = 7  # fast_rcnn: RoIPool output side
  c.score_threshold = 0.05
  c.nms_iou = 0.5
  c.max_detections = 100
  c.num_pictures = 8
  c.predict_dir = ""  # --mode=predict writes here ("" -> beside each image)
  return c


@base.register("region_cnn")
class RegionCNNTask(detection.DetectionTask):
  """R-CNN / Fast R-CNN on cached selective-search proposals; config section `region_cnn` (`default_config`).

  Reuses the single-shot detection task's input preparation, pictures, `--mode=eval` and `--mode=predict`.

  Args:
    config: the experiment config.
    spec: the training split's spec; needs boxes, box_labels and num_objects features.
  """

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):  # pylint: disable=super-init-not-called
    base.Task.__init__(self, config, spec)
    self.num_classes, self.class_names = detection.detection_classes(spec, "region_cnn")
    self.cfg = cfg = config.region_cnn
    if cfg.kind not in KINDS:
      raise ConfigError(f"region_cnn.kind={cfg.kind!r}; use one of {', '.join(KINDS)}")
    if cfg.mode not in MODES:
      raise ConfigError(f"region_cnn.mode={cfg.mode!r}; use a selective search mode: {', '.join(MODES)}")
    if config.input.augment:
      raise ConfigError("task 'region_cnn' takes cached proposals of the stored images, which augmentation would "
                        "move away from the objects: leave input.augment empty")
    if int(config.input.image_size) > 0 or 0 in tuple(spec.image_shape[:2]):
      raise ConfigError("task 'region_cnn' needs images of one stored size (proposals are cached per stored "
                        "image): set input.image_size=0 and use a dataset of fixed-size images")
    self.input_ops = base.InputOps(config.input)
    self.input_shape = self.input_ops.output_shape(tuple(spec.image_shape))
    if tuple(self.input_shape[:2]) != tuple(spec.image_shape[:2]):
      raise ConfigError(f"input.preprocess/normalize change the image size {tuple(spec.image_shape[:2])} -> "
                        f"{tuple(self.input_shape[:2])}, but proposals and boxes stay in stored pixels: drop the "
                        "resizing op")
    self.image_size = tuple(int(v) for v in self.input_shape[:2])
    kwargs = {"width": int(cfg.width), "fc_width": int(cfg.fc_width), **base.compute_dtype(config)}
    if cfg.kind == "rcnn":
      kwargs.update(crop_size=int(cfg.crop_size), context=int(cfg.context))
    else:
      kwargs.update(pool_size=int(cfg.pool_size))
    self.model = region_cnn.build(cfg.kind, self.num_classes, **kwargs)
    self._table: proposal_cache.ProposalTable | None = None

  # --- Proposals ---------------------------------------------------------------------------------------------------
  def proposal_dir(self) -> str:
    """Where proposals are cached (`region_cnn.proposal_dir`, else `<data dir>/proposals`)."""
    if self.cfg.proposal_dir:
      return str(self.cfg.proposal_dir)
    from vision_jax.data import datasets  # pylint: disable=import-outside-toplevel  # TFDS: slow to import
    return os.path.join(self.config.dataset.data_dir or datasets.default_data_dir(), "proposals")

  def table(self) -> proposal_cache.ProposalTable:
    """The proposal table of the run's training and evaluation splits (opened at the first lookup)."""
    if self._table is None:
      from vision_jax.data import datasets  # pylint: disable=import-outside-toplevel
      dataset = self.config.dataset
      splits = {}
      for split, limit in ((dataset.train_split, self.cfg.train_images), (dataset.eval_split, self.cfg.eval_images)):
        source, _ = datasets.load(dataset.name, split, dataset.data_dir or None,
                                  max_objects=int(self.config.input.max_objects))
        splits[split] = (source, int(limit))
      processes = proposal_cache.MAX_PROCESSES if self.cfg.prebuild else 0
      self._table = proposal_cache.ProposalTable(self.proposal_dir(), dataset.name, self.cfg.mode,
                                                 int(self.cfg.num_proposals), splits, self.spec.image_key, processes)
    return self._table

  def proposals(self, images: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Proposals of stored (or, for other images, model-input) images [N, H, W, C], through a host callback.

    Returns:
      (float32 [N, P, 4] boxes, bool [N, P] validity, bool [N] whether each example is in use).
    """
    n, count = images.shape[0], int(self.cfg.num_proposals)
    shapes = (jax.ShapeDtypeStruct((n, count, 4), jnp.float32), jax.ShapeDtypeStruct((n, count), jnp.bool_),
              jax.ShapeDtypeStruct((n,), jnp.bool_))
    return jax.pure_callback(lambda x: self.table().lookup(np.asarray(x)), shapes, images)

  # --- Networks ----------------------------------------------------------------------------------------------------
  def networks(self) -> dict[str, nn.Module]:
    return {"model": self.model}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    return (jnp.zeros((1,) + tuple(self.input_shape), jnp.float32),
            jnp.tile(jnp.asarray([[0.0, 0.0, 16.0, 16.0]], jnp.float32), (1, 2, 1)))

  def identity(self) -> dict[str, Any]:
    return {"num_classes": self.num_classes, "kind": self.cfg.kind}

  # --- Steps -------------------------------------------------------------------------------------------------------
  def roi_targets(self, key: jax.Array, proposals: jax.Array, proposal_valid: jax.Array, boxes: jax.Array,
                  labels: jax.Array, valid: jax.Array):
    """Sampled RoIs and their targets per image (`roi_head_targets`), `[N, rois_per_image, ...]`.

    Args:
      key: sampling key.
      proposals: [N, P, 4] proposals; proposal_valid: [N, P].
      boxes: [N, M, 4] ground truth; labels: [N, M] classes 0..C-1; valid: [N, M].

    Returns:
      `RoITargets` with a leading batch axis (labels 1..C, 0 background).
    """
    cfg = self.cfg
    iou = jax.vmap(box_iou)(proposals, boxes)  # [N, P, M]
    best = jnp.max(jnp.where(valid[:, None, :], iou, 0.0), axis=-1)
    usable = proposal_valid & (best >= float(cfg.bg_iou_low))
    sample = functools.partial(roi_head_targets, batch_size_per_image=int(cfg.rois_per_image),
                               positive_fraction=float(cfg.positive_fraction), fg_iou_thresh=float(cfg.fg_iou),
                               bg_iou_thresh=float(cfg.fg_iou))
    keys = jax.random.split(key, proposals.shape[0])
    return jax.vmap(lambda p, pv, b, l, v, k: sample(p, pv, b, l, v, key=k))(proposals, usable, boxes, labels + 1,
                                                                           valid, keys)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs) -> tuple[TrainState, base.Metrics]:
    """One update of "model" on the multi-task loss of the RoIs sampled from each image's proposals."""
    rng = state.step_rng()
    images, boxes, labels, valid = self.prepare(jax.random.fold_in(rng, 0), batch, True)
    proposals, proposal_valid, in_use = self.proposals(batch["image"])
    targets = self.roi_targets(jax.random.fold_in(rng, 2), proposals, proposal_valid, boxes, labels,
                               valid & in_use[:, None])

    def loss_of(outputs, micro):
      logits, deltas = outputs
      classification, box = fastrcnn_loss(logits, deltas, micro["labels"], micro["regression"], micro["sampled"])
      n = logits.shape[0]
      return classification + box, {"loss": jnp.full((n,), classification + box),
                                    "cls_loss": jnp.full((n,), classification), "box_loss": jnp.full((n,), box)}

    micro = {"inputs": (images, targets.proposals), "labels": targets.labels,
             "regression": targets.regression_targets, "sampled": targets.sampled}
    if int(self.cfg.rois_per_batch) > 0:
      micro = self.pool_rois(jax.random.fold_in(rng, 3), micro)
    state, parts = base.supervised_update(state, txs, self.model, micro, loss_of, jax.random.fold_in(rng, 1),
                                          int(self.config.train.grad_accum_steps), self.config.train.remat)
    metrics = {k: jnp.mean(v) for k, v in parts.items()}
    images_in_use = jnp.maximum(jnp.sum(in_use), 1)
    metrics["rois"] = jnp.sum(targets.sampled) / images_in_use  # per image in use
    metrics["foreground"] = jnp.sum(targets.sampled & (targets.labels > 0)) / images_in_use
    metrics["trained_rois"] = jnp.sum(micro["sampled"]) / images.shape[0]  # per image of the batch
    return state, metrics

  def pool_rois(self, key: jax.Array, micro: dict[str, Any]) -> dict[str, Any]:
    """R-CNN's mini-batch of windows: `rois_per_batch` RoIs drawn at random among the RoIs sampled from all the
    images (fewer when fewer were sampled), each with its own image, so that empty slots and images out of use
    cost no crops.

    Args:
      key: draws the RoIs.
      micro: {"inputs": (images [N, H, W, C], rois [N, R, 4]), "labels" [N, R], "regression" [N, R, 4],
        "sampled" [N, R]}.

    Returns:
      The same keys with K = min(rois_per_batch, N R) rows of one RoI each: images [K, H, W, C], rois [K, 1, 4],
      labels [K, 1], regression [K, 1, 4], sampled [K, 1].
    """
    images, rois = micro["inputs"]
    n, r = rois.shape[:2]
    sampled = micro["sampled"].reshape(n * r)
    priority = jnp.where(sampled, jax.random.uniform(key, (n * r,)), 2.0)
    pick = jnp.argsort(priority)[:int(self.cfg.rois_per_batch)]
    rows = lambda x: x.reshape((n * r,) + x.shape[2:])[pick][:, None]
    return {"inputs": (images[pick // r], rows(rois)), "labels": rows(micro["labels"]),
            "regression": rows(micro["regression"]), "sampled": rows(micro["sampled"])}

  def detect(self, variables: Any, images: jax.Array, proposals: jax.Array | None = None,
             proposal_valid: jax.Array | None = None) -> tuple[Any, dict[str, jax.Array]]:
    """Model-input images [N, H, W, C] (and their proposals; computed from these images when None) ->
    (raw outputs, padded detections {pred_boxes [N, D, 4], pred_scores, pred_labels 0..C-1, pred_valid})."""
    if proposals is None:
      proposals, proposal_valid, _ = self.proposals(images)
    outputs = self.model.apply(variables, images, proposals, train=False)
    cfg = self.cfg
    post = functools.partial(postprocess_detections, image_size=self.image_size,
                             score_thresh=float(cfg.score_threshold), nms_thresh=float(cfg.nms_iou),
                             detections_per_img=int(cfg.max_detections))
    found = jax.vmap(lambda c, b, p, v: post(c, b, p, proposal_valid=v))(*outputs, proposals, proposal_valid)
    valid = jnp.arange(found.boxes.shape[1])[None] < found.count[:, None]
    return outputs, {"pred_boxes": found.boxes, "pred_scores": found.scores,
                     "pred_labels": jnp.maximum(found.labels - 1, 0), "pred_valid": valid}

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Padded detections and truth of each example in use (`mask`), and the images for pictures."""
    images = self.prepare(jax.random.PRNGKey(0), batch, False)[0]
    proposals, proposal_valid, in_use = self.proposals(batch["image"])
    mask = batch["mask"] & in_use
    d, n = int(self.cfg.max_detections), images.shape[0]
    empty = {"pred_boxes": jnp.zeros((n, d, 4)), "pred_scores": jnp.zeros((n, d)),
             "pred_labels": jnp.zeros((n, d), jnp.int32), "pred_valid": jnp.zeros((n, d), bool)}
    # Batches holding no example in use (evaluation restricted to the first ones) skip the model.
    out = jax.lax.cond(jnp.any(mask),
                       lambda: self.detect(state.variables("model"), images, proposals, proposal_valid)[1],
                       lambda: empty)
    out.update({k: batch[k] for k in detection.TRUTH_KEYS + ("image",)})
    out.update(mask=mask, count=jnp.sum(mask.astype(jnp.float32)))
    return out

  def evaluators(self) -> list[Evaluator]:
    return [detection.DetectionEvaluator(detection.detection_metrics, int(self.cfg.num_pictures)),
            SumEvaluator(("count",), lambda t: {"num_examples": int(round(float(t["count"])))})]

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """eval_detections.png (as the detection task's) and the proposal caching times in the summary."""
    if self._table is not None and self._table.build_reports:
      summary["proposal_caching"] = dict(self._table.build_reports)
    return super().write_reports(workdir, metrics, summary)
