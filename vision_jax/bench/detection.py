"""Bench row of the detection family: one SSD300-VGG16 train step (forward, multibox loss with matching and hard
negative mining, backward, SGD update) at batch 2, ours (`SSD300VGG16` + `losses.detection.ssd_loss`) beside
the same network and loss written by hand in PyTorch (`vision_jax.bench.detection_torch`).

Both: 300x300x3 random inputs, 21 classes (VOC + background), 3 random truths per image, torchvision's 8,732
default boxes, SGD momentum 0.9 at lr 1e-3; eval: the forward pass.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vision_jax.bench import timing

BATCH, SIZE, CLASSES, TRUTHS = 2, 300, 21, 3
WHAT = f"ssd300_vgg16 b{BATCH} {SIZE}x{SIZE}x3 {CLASSES} classes (loss incl. matching + hard negatives)"


def _batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  rng = np.random.default_rng(0)
  images = rng.random((BATCH, SIZE, SIZE, 3), dtype=np.float32)
  xy = rng.uniform(0, 200, (BATCH, TRUTHS, 2))
  boxes = np.concatenate([xy, xy + rng.uniform(20, 100, (BATCH, TRUTHS, 2))], -1).astype(np.float32)
  labels = rng.integers(1, CLASSES, (BATCH, TRUTHS)).astype(np.int32)
  return images, boxes, labels


def _ours(steps: int) -> dict[str, Any]:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from vision_jax.backends.cpu import rewrites as xla_cpu  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from vision_jax.losses.detection import ssd_loss  # pylint: disable=import-outside-toplevel
  from vision_jax.models.detectors.ssd import SSD300VGG16  # pylint: disable=import-outside-toplevel

  images, boxes, labels = (jnp.asarray(a) for a in _batch())
  valid = jnp.ones(labels.shape, bool)
  model = SSD300VGG16(CLASSES)
  anchors = jnp.asarray(SSD300VGG16.anchors())
  params = jax.jit(model.init)(jax.random.key(0), images[:1])["params"]
  tx = optax.sgd(1e-3, momentum=0.9)
  opt_state = tx.init(params)

  @xla_cpu.jit_train_step
  def train_step(params, opt_state):
    def loss_fn(p):
      logits, regression = model.apply({"params": p}, images)
      parts = ssd_loss(logits, regression, anchors, boxes, labels, valid)
      return parts["bbox_regression"] + parts["classification"]
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  forward = xla_cpu.jit_step(lambda p: model.apply({"params": p}, images))
  return timing.jax_timings(train_step, [params, opt_state], lambda state: forward(state[0]), 2, steps)


def _torch(steps: int) -> dict[str, Any]:
  import torch  # pylint: disable=import-outside-toplevel
  from vision_jax.bench import detection_torch  # pylint: disable=import-outside-toplevel
  from vision_jax.models.detectors.ssd import SSD300VGG16  # pylint: disable=import-outside-toplevel

  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  images_np, boxes_np, labels_np = _batch()
  images = torch.from_numpy(images_np).permute(0, 3, 1, 2).contiguous()
  boxes, labels = torch.from_numpy(boxes_np), torch.from_numpy(labels_np).long()
  anchors = torch.from_numpy(SSD300VGG16.anchors())
  net = detection_torch.SSD300(CLASSES)
  opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

  def train_step():
    opt.zero_grad(set_to_none=True)
    loss = detection_torch.ssd_loss(*net(images), anchors, boxes, labels)
    loss.backward()
    opt.step()
    return loss

  def eval_step():
    with torch.no_grad():
      return net(images)

  train = timing.time_steps(train_step, lambda x: x, 2, steps)
  evaluation = timing.time_steps(eval_step, lambda x: x, 2, steps)
  return {"train": train, "eval": evaluation, "note": f"torch {torch.__version__}, {torch.get_num_threads()} threads"}


def measure(framework: str, steps: int) -> dict[str, Any]:
  """Images per second of the SSD300 train step and forward pass (module docstring).

  Args:
    framework: "ours" or "torch".
    steps: timed steps (5 when 0).
  """
  steps = steps or 5
  result = _ours(steps) if framework == "ours" else _torch(steps)
  return timing.family_row(WHAT, BATCH, result)
