"""Bench rows of the two-stage family: a Faster R-CNN train step and inference, ours beside torchvision's
`FasterRCNN` of the same architecture (`rcnn_torchvision_peer`, which needs torchvision). Two settings:

`SMALL` (the `rcnn` family row, fast): `fasterrcnn_small_fpn` on a fixed batch of 8 random 96x96x3 images with 3
random ground-truth boxes of 10-40 px each, 11 classes (10 + background); anchors 12..192 on P2..P6 with ratios 0.5,
1, 2 (the digits config); RPN 256 anchors per image (half positive), 600/300 proposals before/after NMS in training
and 300/100 in testing; 128 sampled RoIs per image (a quarter positive), 25 detections per image.
`RESNET50` (issue 16's model, minutes on 2 cores): `fasterrcnn_resnet50_fpn` (frozen batch norm, layers 2-4
trainable, 91 classes) on one random 800x800x3 image with 3 boxes of 64-320 px and torchvision's defaults (RPN
2000/2000 proposals in training, 1000/1000 in testing, 512 RoIs, 100 detections, anchors 32..512).
Both: images normalised with ImageNet's mean/std inside the step; SGD momentum 0.9, lr 1e-3. Train: backbone + FPN
in training mode, RPN loss, proposals on stopped gradients, RoI sampling, Fast R-CNN loss, gradients and the update.
Eval: `detect` (proposals, box head, postprocessing).

    python -m vision_jax.bench --models= --pipeline=false --ops=false --families=rcnn   # SMALL, ours and torch
    python -m vision_jax.bench.rcnn --resnet50                        # ours: SMALL, then RESNET50
    /tmp/tvenv/bin/python -m vision_jax.bench.rcnn_torchvision_peer --resnet50   # torchvision: the same two
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import numpy as np

from vision_jax.bench import timing

IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LEARNING_RATE = 1e-3
TRUTHS = 3


@dataclasses.dataclass(frozen=True)
class Setting:
  """One bench row: model, input and torchvision-named train/test settings.

  Attributes:
    model: registered model name (ours; the peer builds torchvision's equal).
    batch, size, classes: images per step, square side, classes with background.
    box_range: (min, max) side of the random ground-truth boxes, pixels.
    anchor_sizes, aspect_ratios: the anchor generator's, per level.
    rpn_batch, rpn_positive, pre_nms, post_nms, box_batch, box_positive: training settings.
    test_pre_nms, test_post_nms, detections: inference settings.
  """

  model: str
  batch: int
  size: int
  classes: int
  box_range: tuple[float, float]
  anchor_sizes: tuple[tuple[int, ...], ...]
  aspect_ratios: tuple[tuple[float, ...], ...] = ((0.5, 1.0, 2.0),) * 5
  rpn_batch: int = 256
  rpn_positive: float = 0.5
  pre_nms: int = 2000
  post_nms: int = 2000
  box_batch: int = 512
  box_positive: float = 0.25
  test_pre_nms: int = 1000
  test_post_nms: int = 1000
  detections: int = 100

  @property
  def what(self) -> str:
    return (f"{self.model} b{self.batch} {self.size}x{self.size}x3 {self.classes} classes, {TRUTHS} boxes/image "
            "(train: RPN + RoI sampling + losses; eval: detect)")


SMALL = Setting("fasterrcnn_small_fpn", 8, 96, 11, (10, 40), ((12,), (24,), (48,), (96,), (192,)), pre_nms=600,
                post_nms=300, box_batch=128, test_pre_nms=300, test_post_nms=100, detections=25)
RESNET50 = Setting("fasterrcnn_resnet50_fpn", 1, 800, 91, (64, 320), ((32,), (64,), (128,), (256,), (512,)))
# The small row's constants, as the peer and tests name them.
BATCH, SIZE, CLASSES = SMALL.batch, SMALL.size, SMALL.classes
ANCHOR_SIZES, ASPECT_RATIOS = SMALL.anchor_sizes, SMALL.aspect_ratios
WHAT = SMALL.what


def fixed_batch(setting: Setting = SMALL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Images [B, S, S, 3] in [0, 1], boxes [B, 3, 4] xyxy with sides in `box_range`, labels [B, 3] in 1..10 (seed 0)."""
  rng = np.random.default_rng(0)
  b, size, (low, high) = setting.batch, setting.size, setting.box_range
  images = rng.random((b, size, size, 3), dtype=np.float32)
  corner = rng.uniform(0, size - high, (b, TRUTHS, 2))
  boxes = np.concatenate([corner, corner + rng.uniform(low, high, (b, TRUTHS, 2))], -1).astype(np.float32)
  labels = rng.integers(1, min(setting.classes, 11), (b, TRUTHS)).astype(np.int32)
  return images, boxes, labels


def _random_variables(model, size: int) -> Any:
  """N(0, 1/fan_in) weights and U(0.5, 1.5) batch-norm statistics from NumPy (seed 0): compiling `init` of ResNet-50
  costs more than the benchmark."""
  # pylint: disable=import-outside-toplevel
  import jax
  import jax.numpy as jnp
  # pylint: enable=import-outside-toplevel
  rng = np.random.default_rng(0)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, size, size, 3)))
  variables = {"params": jax.tree.map(lambda v: jnp.asarray(
      rng.normal(0, 1 / np.sqrt(np.prod(v.shape[:-1]) or 1), v.shape), jnp.float32), shapes["params"])}
  variables["batch_stats"] = jax.tree.map(lambda v: jnp.asarray(rng.uniform(0.5, 1.5, v.shape), jnp.float32),
                                          shapes.get("batch_stats", {}))
  return variables


def _ours(steps: int, setting: Setting = SMALL, warmup: int = 2) -> dict[str, Any]:
  # pylint: disable=import-outside-toplevel
  import jax
  import jax.numpy as jnp
  import optax
  from vision_jax import models
  from vision_jax.backends.cpu import rewrites as xla_cpu
  from vision_jax.losses.rcnn_heads import fastrcnn_loss, roi_head_targets
  from vision_jax.losses.rpn import rpn_loss
  from vision_jax.models.detectors.rcnn import RCNN
  from vision_jax.models.detectors.rcnn.inference import InferenceConfig, detect
  from vision_jax.ops.anchors import rcnn_anchors, rcnn_anchors_per_level
  from vision_jax.ops.proposals import filter_proposals
  # pylint: enable=import-outside-toplevel

  s = setting
  images_np, boxes_np, labels_np = fixed_batch(s)
  boxes, labels = jnp.asarray(boxes_np), jnp.asarray(labels_np)
  valid = jnp.ones(labels.shape, bool)
  model = models.get(s.model)
  image_size = jnp.asarray([s.size, s.size], jnp.int32)
  normalise = lambda x: (x - jnp.asarray(IMAGE_MEAN)) / jnp.asarray(IMAGE_STD)
  images = jnp.asarray(images_np)
  variables = _random_variables(model, s.size)
  # The pyramid's sizes as the network makes them (P6 pools P5 with ceil rounding: 3 -> 2 at 96 px).
  feature_sizes = [tuple(f.shape[1:3]) for f in jax.eval_shape(
      lambda v, x: model.apply(v, x, method=RCNN.features), variables, images[:1])]
  anchors = rcnn_anchors((s.size, s.size), feature_sizes, s.anchor_sizes, s.aspect_ratios)
  per_level = rcnn_anchors_per_level(feature_sizes, s.anchor_sizes, s.aspect_ratios)
  tx = optax.sgd(LEARNING_RATE, momentum=0.9)

  def loss_fn(params, batch_stats, key):
    v = {"params": params, "batch_stats": batch_stats}
    feats, updates = model.apply(v, normalise(images), train=True, method=RCNN.features, mutable=["batch_stats"])
    objectness, deltas = model.apply(v, feats, method=RCNN.rpn)
    rpn_obj, rpn_box = rpn_loss(objectness, deltas, anchors, boxes, valid, key=jax.random.fold_in(key, 0),
                                batch_size_per_image=s.rpn_batch, positive_fraction=s.rpn_positive)
    proposals, _, proposal_valid = jax.vmap(lambda d, o: filter_proposals(
        anchors, d, o, image_size, per_level, s.pre_nms, s.post_nms, 0.7))(
            jax.lax.stop_gradient(deltas), jax.lax.stop_gradient(objectness))
    keys = jax.random.split(jax.random.fold_in(key, 1), s.batch)
    targets = jax.vmap(lambda p, pv, b, l, gv, k: roi_head_targets(
        p, pv, b, l, gv, key=k, batch_size_per_image=s.box_batch, positive_fraction=s.box_positive))(
            proposals, proposal_valid, boxes, labels, valid, keys)
    class_logits, box_deltas = model.apply(v, feats, targets.proposals, method=RCNN.box_branch)
    classifier, box_reg = fastrcnn_loss(class_logits, box_deltas, targets.labels, targets.regression_targets,
                                        targets.sampled)
    return rpn_obj + rpn_box + classifier + box_reg, updates.get("batch_stats", batch_stats)

  @xla_cpu.jit_train_step
  def train_step(params, batch_stats, opt_state, key):
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats, key)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  config = InferenceConfig(anchor_sizes=s.anchor_sizes, aspect_ratios=s.aspect_ratios,
                           rpn_pre_nms_top_n=s.test_pre_nms, rpn_post_nms_top_n=s.test_post_nms,
                           detections_per_img=s.detections)
  sizes = jnp.full((s.batch, 2), s.size, jnp.int32)
  state = [variables["params"], variables["batch_stats"], tx.init(variables["params"]), 0]

  def step():
    state[3] += 1
    state[0], state[1], state[2], loss = train_step(*state[:3], jax.random.key(state[3]))
    return loss

  predict = xla_cpu.jit_step(lambda v, x: detect(model, v, normalise(x), sizes, config))
  train = timing.time_steps(step, jax.block_until_ready, warmup, steps)
  evaluation = timing.time_steps(lambda: predict({"params": state[0], "batch_stats": state[1]}, images),
                                 jax.block_until_ready, warmup, steps)
  return {"train": train, "eval": evaluation, "note": f"jax {jax.__version__}"}


def measure(framework: str, steps: int) -> dict[str, Any]:
  """Images per second of the `SMALL` train step and inference (the `rcnn` family row; module docstring).

  Args:
    framework: "ours" or "torch" (torchvision's `FasterRCNN`).
    steps: timed steps (5 when 0).
  """
  return measure_setting(framework, steps or 5, SMALL)


def measure_setting(framework: str, steps: int, setting: Setting) -> dict[str, Any]:
  """A family row ("what", "train_per_sec", "eval_per_sec", "compile_sec", "note") of `setting`.

  Args:
    framework: "ours" or "torch".
    steps: timed steps after the warm-up calls (2 for `SMALL`, 1 for `RESNET50`).
    setting: the model and input.
  """
  warmup = 1 if setting.size >= 512 else 2
  if framework == "ours":
    result = _ours(steps, setting, warmup)
  else:
    from vision_jax.bench import rcnn_torchvision_peer  # pylint: disable=import-outside-toplevel
    result = rcnn_torchvision_peer.timings(steps, setting, warmup)
  row = timing.family_row(setting.what, setting.batch, result)
  row["eval_first_sec"] = result["eval"]["first_step_sec"]
  return row


def cli(label: str, framework: str) -> None:
  """Parses --steps and --resnet50, then prints each row's img/s (shared with the peer)."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
  parser.add_argument("--steps", type=int, default=5, help="timed steps of the small row (ResNet-50: --steps_resnet50)")
  parser.add_argument("--resnet50", action="store_true", help="also the RESNET50 row (800x800, batch 1; minutes)")
  parser.add_argument("--steps_resnet50", type=int, default=3)
  parser.add_argument("--only_resnet50", action="store_true", help="the RESNET50 row alone")
  args = parser.parse_args()
  settings = [] if args.only_resnet50 else [(SMALL, args.steps)]
  if args.resnet50 or args.only_resnet50:
    settings.append((RESNET50, args.steps_resnet50))
  for setting, steps in settings:
    row = measure_setting(framework, steps, setting)
    train, infer = row["train_per_sec"], row["eval_per_sec"]
    print(f"{label}, {row['what']}: train {train:.3f} img/s ({setting.batch / train:.2f} s/step), inference "
          f"{infer:.3f} img/s ({setting.batch / infer:.2f} s/step) (median of {steps}; first train step "
          f"{row['compile_sec']:.1f} s, first inference "
          f"{row['eval_first_sec']:.1f} s; {row['note']})", flush=True)


if __name__ == "__main__":
  cli("ours", "ours")
