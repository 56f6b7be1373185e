"""The single-shot detectors of the `detection` task: each kind's network, loss and box decoding, and the shared
postprocessing to padded, NMS-ed detections.

Kinds (`config.detector.kind`): ssd | yolo_v1 | yolo_v2 | yolo_v3. Class indices are the dataset's 0..C-1; SSD
adds a background channel 0 internally (its logits are [N, A, C + 1]).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax.errors import ConfigError
from vision_jax.losses import detection as det_losses
from vision_jax.models.detectors import ssd, yolo
from vision_jax.ops import box_coding, boxes as boxes_lib
from vision_jax.ops.nms import batched_nms

KINDS = ("ssd", "yolo_v1", "yolo_v2", "yolo_v3")


@dataclasses.dataclass
class Detector:
  """One detector kind bound to an input size and a class count.

  Attributes:
    model: the network (images [N, H, W, C] -> raw outputs).
    loss: (outputs, gt_boxes [N, M, 4], gt_labels [N, M] in 0..C-1, gt_valid [N, M]) -> {"loss": scalar, ...}.
    decode: outputs -> (boxes [N, P, 4] xyxy pixels, class scores [N, P, C]).
    identity: what a checkpoint must agree on (anchors, grid).
  """

  model: nn.Module
  loss: Callable[..., dict[str, jax.Array]]
  decode: Callable[[Any], tuple[jax.Array, jax.Array]]
  identity: dict[str, Any]


def postprocess(boxes: jax.Array, scores: jax.Array, score_threshold: float, candidates_per_class: int,
                iou_threshold: float, max_detections: int) -> dict[str, jax.Array]:
  """torchvision SSD-style postprocessing of one image: per class, the scores above `score_threshold`, their
  top `candidates_per_class`, then per-class NMS at `iou_threshold` and the best `max_detections`.

  Args:
    boxes: [P, 4] xyxy boxes (shared by every class).
    scores: [P, C] class scores.

  Returns:
    pred_boxes [D, 4], pred_scores [D], pred_labels [D] int32, pred_valid [D] bool (D = `max_detections`),
    by decreasing score.
  """
  p, c = scores.shape
  k = min(candidates_per_class, p)
  top_scores, top = jax.lax.top_k(scores.T, k)  # [C, k]
  flat_scores = top_scores.reshape(-1)
  flat_boxes = boxes[top.reshape(-1)]
  labels = jnp.repeat(jnp.arange(c, dtype=jnp.int32), k)
  flat_scores = jnp.where(flat_scores > score_threshold, flat_scores, -jnp.inf)
  keep, _ = batched_nms(flat_boxes, flat_scores, labels, iou_threshold, max_detections,
                                score_threshold=-1e30)
  valid = keep >= 0
  index = jnp.maximum(keep, 0)
  return {"pred_boxes": jnp.where(valid[:, None], flat_boxes[index], 0.0),
          "pred_scores": jnp.where(valid, flat_scores[index], 0.0),
          "pred_labels": jnp.where(valid, labels[index], -1), "pred_valid": valid}


def _clip(boxes: jax.Array, image_size: tuple[int, int]) -> jax.Array:
  height, width = image_size
  return jnp.stack([jnp.clip(boxes[..., 0], 0, width), jnp.clip(boxes[..., 1], 0, height),
                    jnp.clip(boxes[..., 2], 0, width), jnp.clip(boxes[..., 3], 0, height)], -1)


def _ssd(cfg: ml_collections.ConfigDict, num_classes: int, image_size: tuple[int, int], dtype: dict) -> Detector:
  if cfg.backbone == "vgg16":
    model = ssd.SSD300VGG16(num_classes + 1, **dtype)
    anchors = ssd.SSD300VGG16.anchors(image_size)
  else:
    model = ssd.SmallSSD(num_classes + 1, width=int(cfg.width), **dtype)
    anchors = ssd.SmallSSD.anchors(image_size)
  anchors = jnp.asarray(anchors)

  def loss(outputs, gt_boxes, gt_labels, gt_valid):
    parts = det_losses.ssd_loss(outputs[0], outputs[1], anchors, gt_boxes, gt_labels + 1, gt_valid)
    return {"loss": parts["bbox_regression"] + parts["classification"], "box_loss": parts["bbox_regression"],
            "class_loss": parts["classification"]}

  def decode(outputs):
    boxes = box_coding.faster_rcnn_decode(anchors[None], outputs[1], det_losses.SSD_BOX_WEIGHTS)
    return _clip(boxes, image_size), jax.nn.softmax(outputs[0], -1)[..., 1:]

  return Detector(model, loss, decode, {"num_anchors": int(anchors.shape[0])})


def _yolo_v1(cfg, num_classes, image_size, dtype) -> Detector:
  b = int(cfg.boxes_per_cell)
  if cfg.v1_head not in yolo.V1_HEADS:
    raise ConfigError(f"detector.v1_head={cfg.v1_head!r} is unknown; choose one of {', '.join(yolo.V1_HEADS)}")
  model = yolo.YoloV1(num_classes, grid=int(cfg.grid), boxes_per_cell=b, width=int(cfg.width),
                      backbone=cfg.backbone, head=str(cfg.v1_head), hidden=int(cfg.v1_hidden),
                      head_channels=int(cfg.v1_head_channels), dropout=float(cfg.v1_dropout), **dtype)
  height, width = image_size

  def loss(outputs, gt_boxes, gt_labels, gt_valid):
    return det_losses.yolo_v1_loss(outputs, gt_boxes, gt_labels, gt_valid, image_size, b)

  def decode(outputs):
    n, s_h, s_w, _ = outputs.shape
    raw = outputs[..., :b * 5].reshape(n, s_h, s_w, b, 5)
    cols = jnp.arange(s_w, dtype=jnp.float32)[None, None, :, None]
    rows = jnp.arange(s_h, dtype=jnp.float32)[None, :, None, None]
    cxcywh = jnp.stack([(raw[..., 0] + cols) / s_w * width, (raw[..., 1] + rows) / s_h * height,
                        raw[..., 2] ** 2 * width, raw[..., 3] ** 2 * height], -1)
    boxes = _clip(boxes_lib.cxcywh_to_xyxy(cxcywh), image_size)
    # confidence x class score, [N, S, S, B, C]; both are linear outputs, clipped at 0 so that two negative
    # values cannot make a positive score.
    scores = jnp.maximum(raw[..., 4:5], 0) * jnp.maximum(outputs[..., None, b * 5:], 0)
    return boxes.reshape(n, -1, 4), scores.reshape(n, -1, num_classes)

  return Detector(model, loss, decode, {"grid": int(cfg.grid), "boxes_per_cell": b})


def _anchor_decode(outputs, anchors_wh, image_size, class_probs):
  n = outputs.shape[0]
  height, width = image_size
  cxcywh = det_losses.yolo_anchor_boxes(outputs, anchors_wh, image_size)
  cxcywh = cxcywh * jnp.array([width, height, width, height], jnp.float32)
  boxes = _clip(boxes_lib.cxcywh_to_xyxy(cxcywh), image_size)
  scores = jax.nn.sigmoid(outputs[..., 4:5]) * class_probs(outputs[..., 5:])
  return boxes.reshape(n, -1, 4), scores.reshape(n, -1, scores.shape[-1])


def _yolo_v2(cfg, num_classes, image_size, dtype, anchors_wh: np.ndarray) -> Detector:
  model = yolo.YoloV2(num_classes, num_anchors=len(anchors_wh), width=int(cfg.width), backbone=cfg.backbone,
                      **dtype)
  anchors = jnp.asarray(anchors_wh, jnp.float32)

  def loss(outputs, gt_boxes, gt_labels, gt_valid):
    return det_losses.yolo_v2_loss(outputs, anchors, gt_boxes, gt_labels, gt_valid, image_size)

  def decode(outputs):
    return _anchor_decode(outputs, anchors, image_size, lambda z: jax.nn.softmax(z, -1))

  return Detector(model, loss, decode, {"anchors": np.asarray(anchors_wh).round(3).tolist()})


def _yolo_v3(cfg, num_classes, image_size, dtype, anchors_wh: np.ndarray) -> Detector:
  try:
    strides = tuple(int(v) for v in str(cfg.v3_strides).split(","))
  except ValueError:
    strides = ()
  if len(strides) != 3 or any(strides[i] != 2 * strides[i + 1] for i in range(2)):
    raise ConfigError(f"detector.v3_strides={cfg.v3_strides!r} must be three strides, each half the previous: "
                      "'32,16,8' (darknet) or '16,8,4'")
  if cfg.v3_box_loss not in det_losses.V3_BOX_LOSSES:
    raise ConfigError(f"detector.v3_box_loss={cfg.v3_box_loss!r} is unknown; choose one of "
                      f"{', '.join(det_losses.V3_BOX_LOSSES)}")
  model = yolo.YoloV3(num_classes, width=int(cfg.width), backbone=cfg.backbone, strides=strides, **dtype)
  anchors = jnp.asarray(anchors_wh, jnp.float32)
  masks = yolo.V3_MASKS

  def loss(outputs, gt_boxes, gt_labels, gt_valid):
    return det_losses.yolo_v3_loss(outputs, anchors, masks, gt_boxes, gt_labels, gt_valid, image_size,
                                   float(cfg.ignore_thresh), str(cfg.v3_box_loss), float(cfg.v3_box_weight))

  def decode(outputs):
    parts = [_anchor_decode(out, anchors[jnp.asarray(mask)], image_size, jax.nn.sigmoid)
             for out, mask in zip(outputs, masks)]
    return jnp.concatenate([p[0] for p in parts], 1), jnp.concatenate([p[1] for p in parts], 1)

  return Detector(model, loss, decode, {"anchors": np.asarray(anchors_wh).round(3).tolist(), "strides": list(strides)})


def anchors_from_config(cfg: ml_collections.ConfigDict, count: int, box_wh: Callable[[], np.ndarray],
                        seed: int) -> np.ndarray:
  """YOLO anchors [count, 2] in pixels: `cfg.anchors` as "w,h;w,h;..." or "kmeans" (k-means with the 1 - IoU
  distance over the training boxes `box_wh()` [B, 2], sorted by area)."""
  from vision_jax.ops import anchors as anchors_lib  # pylint: disable=import-outside-toplevel
  text = str(cfg.anchors).strip()
  if text == "kmeans":
    wh = np.asarray(box_wh(), np.float32)
    return np.asarray(anchors_lib.kmeans_anchors(jnp.asarray(wh), count, jax.random.PRNGKey(seed)))
  try:
    pairs = [[float(v) for v in item.split(",")] for item in text.split(";") if item.strip()]
  except ValueError:
    pairs = []
  if len(pairs) != count or any(len(p) != 2 for p in pairs):
    raise ConfigError(f"detector.anchors={text!r} must be 'kmeans' or {count} 'w,h' pairs separated by ';'")
  return np.array(pairs, np.float32)


def build(cfg: ml_collections.ConfigDict, num_classes: int, image_size: tuple[int, int], dtype: dict,
          box_wh: Callable[[], np.ndarray], seed: int = 0) -> Detector:
  """The detector of `config.detector` for `num_classes` classes and inputs of `image_size` (H, W)."""
  kind = cfg.kind
  if kind == "ssd":
    return _ssd(cfg, num_classes, image_size, dtype)
  if kind == "yolo_v1":
    return _yolo_v1(cfg, num_classes, image_size, dtype)
  if kind == "yolo_v2":
    return _yolo_v2(cfg, num_classes, image_size, dtype, anchors_from_config(cfg, int(cfg.num_anchors), box_wh, seed))
  if kind == "yolo_v3":
    return _yolo_v3(cfg, num_classes, image_size, dtype, anchors_from_config(cfg, 9, box_wh, seed))
  raise ConfigError(f"unknown detector.kind {kind!r}; choose one of {', '.join(KINDS)}")


def default_config(kind: str, **overrides: Any) -> ml_collections.ConfigDict:
  """The `config.detector` section with every key the task reads, for `kind`, updated by `overrides`.

  Keys: kind; backbone ("small", "vgg16" for SSD300, "darknet19", "darknet53"); width (small backbones);
  anchors ("kmeans" or "w,h;..." pixels) and num_anchors (YOLO v2/v3); grid, boxes_per_cell, v1_head ("conv";
  the paper's "fc"; darknet yolo.cfg's "local"), v1_head_channels, v1_hidden and v1_dropout (YOLO v1);
  ignore_thresh, v3_strides ("32,16,8" or "16,8,4" with the small backbone), v3_box_loss ("darknet", "giou",
  "ciou") and v3_box_weight (YOLO v3); score_threshold, candidates_per_class, nms_iou, max_detections
  (postprocessing);
  num_pictures (eval grid); predict_dir ("" = beside the inputs).
  """
  section = ml_collections.ConfigDict({
      "kind": kind, "backbone": "small", "width": 32 if kind == "ssd" else 16, "anchors": "kmeans",
      "num_anchors": 5 if kind == "yolo_v2" else 9, "grid": 6, "boxes_per_cell": 2, "ignore_thresh": 0.5,
      "v3_strides": "32,16,8", "v3_box_loss": "darknet", "v3_box_weight": 1.0, "v1_head": "conv",
      "v1_head_channels": 128, "v1_hidden": 512, "v1_dropout": 0.0,
      "score_threshold": 0.01, "candidates_per_class": 100, "nms_iou": 0.45, "max_detections": 25,
      "num_pictures": 8, "predict_dir": ""})
  section.update(overrides)
  return section
