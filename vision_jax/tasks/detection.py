"""Object detection with single-shot detectors (`config.task = "detection"`): SSD and YOLO v1/v2/v3, chosen by
`config.detector.kind` (`vision_jax.tasks.detectors`).

Batches carry boxes [N, M, 4] (xyxy pixels of the stored image), box_labels [N, M] (-1 padding) and
num_objects [N]. Geometric ops in `input.preprocess`/`input.augment` move the boxes (boxes that leave the image
stop counting). Evaluation decodes the outputs, keeps per class the scores above `detector.score_threshold`
(top `detector.candidates_per_class`), runs per-class NMS at `detector.nms_iou` and pads the best
`detector.max_detections` with a validity mask; a gathering evaluator scores them with COCO AP/AP50/AP75/AR
and VOC AP50 (all-point, continuous coordinates). The best checkpoint is kept by AP50.

Reports: eval_detections.png, test scenes with the predictions (class and score) beside the truth.
`--mode=predict --images=...` writes `<image>.detections.png` beside each input (or in `detector.predict_dir`)
and one COCO-format `detections.json` there.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation.coco_results import coco_results, write_coco_results
from vision_jax.evaluation.detection_voc import voc_evaluate
from vision_jax.evaluation.evaluators import Evaluator, GatherEvaluator, SumEvaluator, coco_detection_metrics
from vision_jax.tasks import base, detectors
from vision_jax.tasks.classification_eval import read_image
from vision_jax.train_lib import writers
from vision_jax.train_lib.state import TrainState

PRED_KEYS = ("pred_boxes", "pred_scores", "pred_labels", "pred_valid")
TRUTH_KEYS = ("boxes", "box_labels", "num_objects")
PICTURE_SCORE = 0.3  # detections drawn in pictures score at least this


class DetectionEvaluator(GatherEvaluator):
  """Gathers padded detections and truth; also keeps the images of the first `num_pictures` examples."""

  def __init__(self, finish, num_pictures: int):
    self.num_pictures = num_pictures
    super().__init__(PRED_KEYS + TRUTH_KEYS, finish)

  def reset(self) -> None:
    super().reset()
    self.pictures: list[np.ndarray] = []

  def update(self, outputs: Mapping[str, np.ndarray]) -> None:
    super().update(outputs)
    kept = sum(len(p) for p in self.pictures)
    if kept < self.num_pictures and "image" in outputs:
      valid = np.asarray(outputs["mask"]).astype(bool)
      self.pictures.append(np.asarray(outputs["image"])[valid][:self.num_pictures - kept])

  def result(self) -> dict[str, Any]:
    metrics = super().result()
    if self.pictures:
      rows = self.gathered()
      count = sum(len(p) for p in self.pictures)
      metrics["picture_images"] = np.concatenate(self.pictures)
      metrics.update({f"picture_{k}": rows[k][:count] for k in PRED_KEYS + TRUTH_KEYS})
    return metrics


def detection_classes(spec: DatasetSpec, task_name: str) -> tuple[int, tuple[str, ...]]:
  """(C, class names) of a detection split; a one-line ConfigError names `task_name` when the split lacks boxes,
  box_labels or num_objects."""
  features = spec.features
  if not all(k in features for k in ("boxes", "box_labels", "num_objects")):
    raise ConfigError(f"task {task_name!r} needs boxes, box_labels and num_objects; dataset {spec.name!r} has "
                      f"{', '.join(sorted(features)) or 'none'}: pick a detection dataset (digit_scenes, voc, coco)")
  num_classes = int(features["box_labels"].num_classes)
  return num_classes, tuple(features["box_labels"].class_names) or tuple(str(i) for i in range(num_classes))


def detection_metrics(rows: Mapping[str, np.ndarray]) -> dict[str, float]:
  """COCO box AP/AR and VOC AP50 of gathered rows (`coco_detection_metrics`' keys)."""
  metrics = coco_detection_metrics(rows)
  truth, found = [], []
  for i in range(len(rows["boxes"])):
    count = int(rows["num_objects"][i])
    truth.append({"boxes": rows["boxes"][i, :count], "labels": rows["box_labels"][i, :count]})
    valid = rows["pred_valid"][i].astype(bool)
    found.append({"boxes": rows["pred_boxes"][i][valid], "labels": rows["pred_labels"][i][valid],
                  "scores": rows["pred_scores"][i][valid]})
  voc = voc_evaluate(truth, found, iou_threshold=0.5, pixel_offset=0.0)
  metrics["VOC_AP50"] = float(voc["mAP"]) if np.isfinite(voc["mAP"]) else -1.0
  return metrics


@base.register("detection")
class DetectionTask(base.Task):
  """Single-shot detection; config section `detector` (kind, backbone, width, anchors, thresholds).

  Args:
    config: the experiment config.
    spec: the training split's spec; needs boxes, box_labels and num_objects features.
  """

  best_metric = ("AP50", "max")
  builds_own_networks = True
  curve_metrics = ("loss", "AP", "AP50")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    self.num_classes, self.class_names = detection_classes(spec, "detection")
    self.cfg = config.detector
    self.input_ops = base.InputOps(config.input)
    stored = tuple(spec.image_shape)
    if 0 in stored[:2] and int(config.input.image_size) > 0:  # varying sizes, resized on the host
      stored = (int(config.input.image_size),) * 2 + stored[2:]
    self.input_shape = self.input_ops.output_shape(stored)
    if tuple(self.input_shape[:2]) != stored[:2] or 0 in stored[:2]:
      raise ConfigError(f"input.preprocess/normalize change the image size {stored[:2]} -> "
                        f"{tuple(self.input_shape[:2])}, but boxes stay in stored pixels: resize with "
                        "input.image_size (host, boxes move along) instead")
    self.image_size = tuple(int(v) for v in self.input_shape[:2])
    self.detector = detectors.build(self.cfg, self.num_classes, self.image_size, base.compute_dtype(config),
                                    self._training_box_sizes, int(config.seed))

  def _training_box_sizes(self) -> np.ndarray:
    """[B, 2] widths and heights of up to 4,000 training images' boxes (for k-means anchors)."""
    from vision_jax.data import datasets  # pylint: disable=import-outside-toplevel
    source, _ = datasets.load(self.config.dataset.name, self.config.dataset.train_split,
                              self.config.dataset.data_dir or None, max_objects=int(self.config.input.max_objects))
    sizes = []
    for i in range(min(len(source), 4000)):
      record = source[i]
      boxes = np.asarray(record["boxes"], np.float32)[:int(record["num_objects"])]
      sizes.append(boxes[:, 2:] - boxes[:, :2])
    return np.concatenate(sizes)

  def networks(self) -> dict[str, nn.Module]:
    return {"model": self.detector.model}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    return (jnp.zeros((1,) + tuple(self.input_shape), jnp.float32),)

  def identity(self) -> dict[str, Any]:
    return {"num_classes": self.num_classes, "kind": self.cfg.kind, **self.detector.identity}

  def prepare(self, rng: jax.Array, batch: Mapping[str, jax.Array], train: bool):
    """Stored batch -> (model input [N, H, W, C], boxes [N, M, 4], labels [N, M] clamped to >= 0, valid [N, M])."""
    boxes, labels = batch["boxes"].astype(jnp.float32), batch["box_labels"]
    valid = (jnp.arange(boxes.shape[1])[None] < batch["num_objects"][:, None]) & (labels >= 0)
    ops = self.input_ops
    sample = ops.preprocess.apply(jax.random.fold_in(rng, 0), batch["image"], boxes=boxes)
    if train:
      sample = ops.augment.apply(jax.random.fold_in(rng, 1), sample.images, boxes=sample.boxes)
    if sample.visible is not None:
      valid = valid & (sample.visible > 0)
    images = ops.normalize(jax.random.fold_in(rng, 2), sample.images)
    return images, sample.boxes, jnp.maximum(labels, 0), valid

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs) -> tuple[TrainState, base.Metrics]:
    """One update of "model" on the detector's loss of the batch."""
    rng = state.step_rng()
    images, boxes, labels, valid = self.prepare(jax.random.fold_in(rng, 0), batch, True)

    def loss_of(outputs, micro):
      parts = self.detector.loss(outputs, micro["boxes"], micro["labels"], micro["valid"])
      n = micro["boxes"].shape[0]
      return parts["loss"], {k: jnp.full((n,), v) for k, v in parts.items()}

    micro = {"inputs": (images,), "boxes": boxes, "labels": labels, "valid": valid}
    state, parts = base.supervised_update(state, txs, self.detector.model, micro, loss_of,
                                          jax.random.fold_in(rng, 1), int(self.config.train.grad_accum_steps),
                                          self.config.train.remat)
    return state, {k: jnp.mean(v) for k, v in parts.items()}

  def detect(self, variables: Any, images: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
    """Model-input images -> (raw outputs, padded detections of `detectors.postprocess`, [N, D, ...])."""
    outputs = self.detector.model.apply(variables, images, train=False)
    boxes, scores = self.detector.decode(outputs)
    cfg = self.cfg
    post = lambda b, s: detectors.postprocess(b, s, float(cfg.score_threshold), int(cfg.candidates_per_class),
                                              float(cfg.nms_iou), int(cfg.max_detections))
    return outputs, jax.vmap(post)(boxes, scores)

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Padded detections and truth of each image, the images (for pictures) and the summed loss."""
    images, boxes, labels, valid = self.prepare(jax.random.PRNGKey(0), batch, False)
    outputs, out = self.detect(state.variables("model"), images)
    weights = batch["mask"].astype(jnp.float32)
    count = jnp.sum(weights)
    out["loss"] = self.detector.loss(outputs, boxes, labels, valid & batch["mask"][:, None])["loss"] * count
    out["count"] = count
    out.update({k: batch[k] for k in TRUTH_KEYS + ("mask", "image")})
    return out

  def evaluators(self) -> list[Evaluator]:
    return [DetectionEvaluator(detection_metrics, int(self.cfg.num_pictures)),
            SumEvaluator(("loss", "count"), lambda t: {"loss": float(t["loss"] / t["count"]),
                                                       "num_examples": int(round(float(t["count"])))})]

  # --- Pictures and modes ------------------------------------------------------------------------------------------
  def _prediction_cell(self, image, boxes, scores, labels, valid, title: str) -> dict[str, Any]:
    keep = np.flatnonzero(np.asarray(valid) & (np.asarray(scores) >= PICTURE_SCORE))
    names = [f"{self.class_names[int(labels[j])]} {float(scores[j]):.2f}" for j in keep]
    return {"image": image, "boxes": np.asarray(boxes)[keep], "box_labels": np.arange(len(keep)),
            "class_names": names, "title": title}

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """eval_detections.png: up to `detector.num_pictures` test images, predictions (left) beside truth (right)."""
    if "picture_images" not in metrics:
      return []
    from vision_jax.plots import annotations  # pylint: disable=import-outside-toplevel
    cells = []
    for i, image in enumerate(metrics["picture_images"]):
      cells.append(self._prediction_cell(image, *(metrics[f"picture_{k}"][i] for k in PRED_KEYS),
                                         title="predicted"))
      cells.append({"image": image, "boxes": metrics["picture_boxes"][i],
                    "box_labels": metrics["picture_box_labels"][i],
                    "num_objects": int(metrics["picture_num_objects"][i]), "class_names": self.class_names,
                    "title": "truth"})
    path = os.path.join(workdir, "eval_detections.png")
    annotations.plot_annotated_grid(cells, path, cols=4)
    summary["eval_detections_png"] = path
    return [path]

  def eval_mode(self, members, runner) -> list[str]:
    """`--mode=eval`: metrics of the best (else newest) checkpoint to eval.json, and eval_detections.png."""
    if len(members) > 1:
      raise ConfigError("--ensemble is for classifiers; task 'detection' evaluates one run: drop --ensemble")
    config, workdir = members[0]
    metrics = runner.evaluate(config, workdir)
    scalars = base.scalar_metrics(metrics)
    lines = [f"eval of step {metrics.get('step')}: " + " ".join(
        f"{k} {scalars[k]:.4f}" for k in ("AP", "AP50", "AP75", "AR100", "VOC_AP50", "loss") if k in scalars)]
    if jax.process_index() == 0:
      path = os.path.join(workdir, "eval.json")
      writers.write_json(path, {"step": metrics.get("step"), "metrics": scalars})
      lines += [f"wrote {p}" for p in [path] + self.write_reports(workdir, metrics, {})]
    return lines

  def predict(self, state: TrainState, paths: Sequence[str]) -> list[str]:
    """Detections on image files: a picture per file and one COCO-format detections.json."""
    return predict_files(self, state, paths)


def _coco_records(index: int, path: str, found: Mapping[str, np.ndarray], scale: np.ndarray,
                  original_size: tuple[int, int], class_names: Sequence[str]) -> list[dict[str, Any]]:
  """COCO result records of one image's detections, boxes scaled to the original image (RLE masks if any)."""
  valid = found["pred_valid"].astype(bool)
  masks = None
  if "pred_masks" in found:  # nearest resize to the original (W, H)
    masks = np.zeros((0, original_size[1], original_size[0]), bool)
    if valid.any():
      masks = np.stack([np.asarray(Image.fromarray(m.astype(np.uint8)).resize(original_size, Image.NEAREST), bool)
                        for m in found["pred_masks"][valid]])
  records = coco_results([index], [found["pred_boxes"][valid] * scale], [found["pred_scores"][valid]],
                         [found["pred_labels"][valid]], masks=None if masks is None else [masks])
  return [{**r, "file_name": os.path.basename(path), "category": class_names[int(r["category_id"])]} for r in records]


def predict_files(task: DetectionTask, state: TrainState, paths: Sequence[str]) -> list[str]:
  """`--mode=predict` of a detection task: `<image>.detections.png` per file and one detections.json.

  `task.detect(variables, images)[1]` gives the padded `PRED_KEYS` and, for instance segmentation, "pred_masks"
  [N, D, H, W] bool: then the pictures show the masks and the JSON records carry RLE `segmentation`s.

  Args:
    task: a `DetectionTask` (or subclass: image_size, input_shape, input_ops, detect, class_names, cfg.predict_dir).
    state: the trained state (network "model").
    paths: image files; pictures and detections.json go beside them or into `cfg.predict_dir`.

  Returns:
    One line per file (detections, the first five with scores, the picture's path; the last names the JSON).
  """
  from vision_jax.plots import annotations  # pylint: disable=import-outside-toplevel
  height, width = task.image_size
  channels = int(task.input_shape[-1])
  detect = jax.jit(lambda v, x: task.detect(v, task.input_ops(jax.random.PRNGKey(0), x, False))[1])
  lines, records = [], []
  out_dir = str(task.cfg.predict_dir)
  for index, path in enumerate(paths):
    with Image.open(path) as original:
      original_size = original.size  # (W, H)
    image = read_image(path, (height, width, channels))
    found = jax.device_get(detect(state.variables("model"), image[None]))
    found = {k: np.asarray(v[0]) for k, v in found.items()}
    scale = np.array([original_size[0] / width, original_size[1] / height] * 2, np.float32)
    records += _coco_records(index, path, found, scale, original_size, task.class_names)
    where = out_dir or os.path.dirname(os.path.abspath(path))
    os.makedirs(where, exist_ok=True)
    picture = os.path.join(where, os.path.splitext(os.path.basename(path))[0] + ".detections.png")
    valid = found["pred_valid"].astype(bool)
    cell = task._prediction_cell(image, found["pred_boxes"], found["pred_scores"], found["pred_labels"], valid,
                                 os.path.basename(path))  # pylint: disable=protected-access
    if "pred_masks" in found:  # the masks of the drawn boxes (the cell's own selection)
      cell["instance_masks"] = found["pred_masks"][valid & (found["pred_scores"] >= PICTURE_SCORE)]
    annotations.plot_annotated_grid([cell], picture, cols=1, cell_inches=4.0)
    shown = ", ".join(f"{task.class_names[int(l)]} {s:.2f}" for l, s in
                      zip(found["pred_labels"][valid][:5], found["pred_scores"][valid][:5]))
    lines.append(f"{path}: {int(valid.sum())} detections{': ' + shown if shown else ''}; wrote {picture}")
  where = out_dir or os.path.dirname(os.path.abspath(paths[0]))
  json_path = os.path.join(where, "detections.json")
  write_coco_results(json_path, records)
  lines[-1] += f"; {json_path}"
  return lines
