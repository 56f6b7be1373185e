"""Bench row of the segmentation family: one train step and one eval pass of the digits U-Net, ours (JAX,
`unet_small_same` + `losses.segmentation.pixel_cross_entropy`) beside the same network written by hand in PyTorch
(`segmentation_torch.torch_unet`).

Both: a batch of 16 64x64x1 images with 11-class label maps, same-padded U-Net of depth 3 and width 16 with
batch norm and 2x2 transposed up-convs, pixel cross-entropy, Adam 1e-3; eval is the forward pass with the
running statistics and the argmax.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vision_jax.bench import timing

BATCH, SIZE, CLASSES, DEPTH, WIDTH = 16, 64, 11, 3, 16
WHAT = f"unet_small_same d{DEPTH} w{WIDTH} bn b{BATCH} {SIZE}x{SIZE}x1 {CLASSES} classes"


def _batch() -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(0)
  images = rng.random((BATCH, SIZE, SIZE, 1), dtype=np.float32)
  return images, rng.integers(0, CLASSES, (BATCH, SIZE, SIZE)).astype(np.int32)


def _ours(steps: int) -> dict[str, Any]:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from vision_jax.backends.cpu import rewrites as xla_cpu  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from vision_jax import models  # pylint: disable=import-outside-toplevel
  from vision_jax.losses.segmentation import pixel_cross_entropy  # pylint: disable=import-outside-toplevel

  images, labels = (jnp.asarray(a) for a in _batch())
  model = models.get("unet_small_same", num_classes=CLASSES, depth=DEPTH, width=WIDTH)
  variables = model.init(jax.random.key(0), images[:1])
  tx = optax.adam(1e-3)
  state = [variables["params"], variables["batch_stats"], tx.init(variables["params"])]

  @xla_cpu.jit_train_step
  def train_step(params, batch_stats, opt_state):
    def loss_fn(p):
      logits, updates = model.apply({"params": p, "batch_stats": batch_stats}, images, train=True,
                                    mutable=["batch_stats"])
      return pixel_cross_entropy(logits, labels), updates["batch_stats"]
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  predict = xla_cpu.jit_step(lambda p, s: jnp.argmax(model.apply({"params": p, "batch_stats": s}, images), -1))
  return timing.jax_timings(train_step, state, lambda current: predict(current[0], current[1]), 3, steps)


def _torch(steps: int) -> dict[str, Any]:
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel
  from vision_jax.bench.segmentation_torch import torch_unet  # pylint: disable=import-outside-toplevel

  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  images_np, labels_np = _batch()
  images = torch.from_numpy(images_np).permute(0, 3, 1, 2).contiguous()
  labels = torch.from_numpy(labels_np).long()
  net = torch_unet(1, CLASSES, DEPTH, WIDTH, "same", batch_norm=True)
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)

  def train_step():
    net.train()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(images), labels)
    loss.backward()
    opt.step()
    return loss

  def eval_step():
    net.eval()
    with torch.no_grad():
      return net(images).argmax(1)

  return timing.torch_timings(torch, train_step, eval_step, steps)


def measure(framework: str, steps: int) -> dict[str, Any]:
  """Images per second of the U-Net train step and of the eval pass (module docstring).

  Args:
    framework: "ours" or "torch".
    steps: timed steps (20 when 0).
  """
  steps = steps or 20
  result = _ours(steps) if framework == "ours" else _torch(steps)
  return timing.family_row(WHAT, BATCH, result)
