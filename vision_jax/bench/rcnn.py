"""Bench row of the two-stage family: the small-FPN Faster R-CNN (`fasterrcnn_small_fpn`) train step and inference,
ours beside torchvision's `FasterRCNN` of the same architecture (`rcnn_torchvision_peer`, which needs torchvision).

Both: a fixed batch of 8 random 96x96x3 images with 3 random ground-truth boxes each, 11 classes (10 + background),
normalised with ImageNet's mean/std inside the step; anchors 12..192 on P2..P6 with ratios 0.5, 1, 2 (the digits
config); RPN 256 anchors per image (half positive), 600/300 proposals before/after NMS in training and 300/100
in testing; 128 sampled RoIs per image (a quarter positive), 25 detections per image; SGD momentum 0.9, lr 1e-3.
Train: backbone + FPN in training mode (batch statistics), RPN loss, proposals on stopped gradients, RoI sampling,
Fast R-CNN loss, gradients and the update. Eval: `detect` (proposals, box head, postprocessing).

    python -m vision_jax.bench --models= --pipeline=false --ops=false --families=rcnn
    python -m vision_jax.bench.rcnn --resnet50     # also ResNet-50-FPN inference at 800x800, batch 1
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np

from vision_jax.bench import timing

BATCH, SIZE, CLASSES, TRUTHS = 8, 96, 11, 3
ANCHOR_SIZES = ((12,), (24,), (48,), (96,), (192,))
ASPECT_RATIOS = ((0.5, 1.0, 2.0),) * 5
TRAIN_SETTINGS = dict(rpn_batch=256, rpn_positive=0.5, pre_nms=600, post_nms=300, box_batch=128, box_positive=0.25)
TEST_SETTINGS = dict(pre_nms=300, post_nms=100, detections=25)
IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LEARNING_RATE = 1e-3
WHAT = (f"fasterrcnn_small_fpn b{BATCH} {SIZE}x{SIZE}x3 {CLASSES} classes, {TRUTHS} boxes/image "
        "(train: RPN + RoI sampling + losses; eval: detect)")


def fixed_batch(batch: int = BATCH, size: int = SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Images [B, S, S, 3] in [0, 1], boxes [B, 3, 4] xyxy of 10-40 px, labels [B, 3] in 1..10 (seed 0)."""
  rng = np.random.default_rng(0)
  images = rng.random((batch, size, size, 3), dtype=np.float32)
  corner = rng.uniform(0, size - 40, (batch, TRUTHS, 2))
  boxes = np.concatenate([corner, corner + rng.uniform(10, 40, (batch, TRUTHS, 2))], -1).astype(np.float32)
  labels = rng.integers(1, CLASSES, (batch, TRUTHS)).astype(np.int32)
  return images, boxes, labels


def _ours(steps: int) -> dict[str, Any]:
  # pylint: disable=import-outside-toplevel
  import jax
  import jax.numpy as jnp
  import optax
  from vision_jax import models
  from vision_jax.losses.rcnn_heads import fastrcnn_loss, roi_head_targets
  from vision_jax.losses.rpn import rpn_loss
  from vision_jax.models.detectors.rcnn import RCNN
  from vision_jax.models.detectors.rcnn.inference import InferenceConfig, detect
  from vision_jax.ops.anchors import rcnn_anchors, rcnn_anchors_per_level
  from vision_jax.ops.proposals import filter_proposals
  # pylint: enable=import-outside-toplevel

  images_np, boxes_np, labels_np = fixed_batch()
  boxes, labels = jnp.asarray(boxes_np), jnp.asarray(labels_np)
  valid = jnp.ones(labels.shape, bool)
  model = models.get("fasterrcnn_small_fpn")
  image_size = jnp.asarray([SIZE, SIZE], jnp.int32)
  normalise = lambda x: (x - jnp.asarray(IMAGE_MEAN)) / jnp.asarray(IMAGE_STD)
  images = jnp.asarray(images_np)
  variables = jax.jit(model.init)(jax.random.key(0), normalise(images[:1]))
  # The pyramid's sizes as the network makes them (P6 pools P5 with ceil rounding: 3 -> 2 at 96 px).
  feature_sizes = [tuple(f.shape[1:3]) for f in jax.eval_shape(
      lambda v, x: model.apply(v, x, method=RCNN.features), variables, images[:1])]
  anchors = rcnn_anchors((SIZE, SIZE), feature_sizes, ANCHOR_SIZES, ASPECT_RATIOS)
  per_level = rcnn_anchors_per_level(feature_sizes, ANCHOR_SIZES, ASPECT_RATIOS)
  tx = optax.sgd(LEARNING_RATE, momentum=0.9)
  s = TRAIN_SETTINGS

  def loss_fn(params, batch_stats, key):
    v = {"params": params, "batch_stats": batch_stats}
    feats, updates = model.apply(v, normalise(images), train=True, method=RCNN.features, mutable=["batch_stats"])
    objectness, deltas = model.apply(v, feats, method=RCNN.rpn)
    rpn_obj, rpn_box = rpn_loss(objectness, deltas, anchors, boxes, valid, key=jax.random.fold_in(key, 0),
                                batch_size_per_image=s["rpn_batch"], positive_fraction=s["rpn_positive"])
    proposals, _, proposal_valid = jax.vmap(lambda d, o: filter_proposals(
        anchors, d, o, image_size, per_level, s["pre_nms"], s["post_nms"], 0.7))(
            jax.lax.stop_gradient(deltas), jax.lax.stop_gradient(objectness))
    keys = jax.random.split(jax.random.fold_in(key, 1), BATCH)
    targets = jax.vmap(lambda p, pv, b, l, gv, k: roi_head_targets(
        p, pv, b, l, gv, key=k, batch_size_per_image=s["box_batch"], positive_fraction=s["box_positive"]))(
            proposals, proposal_valid, boxes, labels, valid, keys)
    class_logits, box_deltas = model.apply(v, feats, targets.proposals, method=RCNN.box_branch)
    classifier, box_reg = fastrcnn_loss(class_logits, box_deltas, targets.labels, targets.regression_targets,
                                        targets.sampled)
    return rpn_obj + rpn_box + classifier + box_reg, updates["batch_stats"]

  @jax.jit
  def train_step(params, batch_stats, opt_state, key):
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats, key)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  config = InferenceConfig(anchor_sizes=ANCHOR_SIZES, aspect_ratios=ASPECT_RATIOS,
                           rpn_pre_nms_top_n=TEST_SETTINGS["pre_nms"], rpn_post_nms_top_n=TEST_SETTINGS["post_nms"],
                           detections_per_img=TEST_SETTINGS["detections"])
  sizes = jnp.full((BATCH, 2), SIZE, jnp.int32)
  state = [variables["params"], variables["batch_stats"], tx.init(variables["params"]), 0]

  def step():
    state[3] += 1
    state[0], state[1], state[2], loss = train_step(*state[:3], jax.random.key(state[3]))
    return loss

  predict = jax.jit(lambda v, x: detect(model, v, normalise(x), sizes, config))
  train = timing.time_steps(step, jax.block_until_ready, 2, steps)
  evaluation = timing.time_steps(lambda: predict({"params": state[0], "batch_stats": state[1]}, images),
                                 jax.block_until_ready, 2, steps)
  return {"train": train, "eval": evaluation, "note": f"jax {jax.__version__}"}


def _torch(steps: int) -> dict[str, Any]:
  from vision_jax.bench import rcnn_torchvision_peer  # pylint: disable=import-outside-toplevel
  return rcnn_torchvision_peer.small_fpn_timings(steps)


def measure(framework: str, steps: int) -> dict[str, Any]:
  """Images per second of the small-FPN Faster R-CNN train step and inference (module docstring).

  Args:
    framework: "ours" or "torch" (torchvision's `FasterRCNN`).
    steps: timed steps (5 when 0).
  """
  steps = steps or 5
  result = _ours(steps) if framework == "ours" else _torch(steps)
  return timing.family_row(WHAT, BATCH, result)


def resnet50_inference(steps: int = 3, size: int = 800) -> dict[str, float]:
  """Ours: `fasterrcnn_resnet50_fpn` (frozen BN, random weights) `detect` on one [size, size] image, seconds.

  torchvision's defaults (1000/1000 proposals, 100 detections); compare `rcnn_torchvision_peer --resnet50`.
  """
  # pylint: disable=import-outside-toplevel
  import jax
  import jax.numpy as jnp
  from vision_jax import models
  from vision_jax.models.detectors.rcnn.inference import detect
  # pylint: enable=import-outside-toplevel
  model = models.get("fasterrcnn_resnet50_fpn")
  rng = np.random.default_rng(0)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
  # N(0, 1/fan_in) weights from NumPy (compiling `init` of ResNet-50 costs more than the benchmark)
  variables = jax.tree.map(lambda v: jnp.asarray(rng.normal(0, 1 / np.sqrt(np.prod(v.shape[:-1]) or 1), v.shape),
                                                 jnp.float32), shapes)
  variables["batch_stats"] = jax.tree.map(lambda v: jnp.asarray(rng.uniform(0.5, 1.5, v.shape), jnp.float32),
                                          shapes["batch_stats"])
  images = jnp.asarray(rng.normal(size=(1, size, size, 3)), jnp.float32)
  sizes = jnp.asarray([[size, size]], jnp.int32)
  t = time.perf_counter()
  result = timing.time_steps(lambda: detect(model, variables, images, sizes), jax.block_until_ready, 1, steps)
  result["total_sec"] = time.perf_counter() - t
  return result


def cli(label: str, timings: Callable[[int], dict[str, Any]], resnet50: Callable[[], dict[str, float]]) -> None:
  """Parses --steps and --resnet50, then prints the row's img/s (and the ResNet-50 figure); shared with the peer."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--resnet50", action="store_true", help="also ResNet-50-FPN inference at 800x800, batch 1")
  args = parser.parse_args()
  row = timing.family_row(WHAT, BATCH, timings(args.steps))
  print(f"{label}, {row['what']}: train {row['train_per_sec']:.2f} img/s, inference {row['eval_per_sec']:.2f} img/s "
        f"(first train step {row['compile_sec']:.1f} s; {row['note']})", flush=True)
  if args.resnet50:
    r50 = resnet50()
    print(f"{label}, fasterrcnn_resnet50_fpn 800x800 b1 inference: {r50['median_step_sec']:.2f} s/img (median of "
          f"3; first call {r50['first_step_sec']:.1f} s)")


if __name__ == "__main__":
  cli("ours", _ours, resnet50_inference)
