"""Bench row of the metric-learning family: one triplet batch-hard train step of a Siamese LeNet-5 (ReLU) embedding
network, ours (JAX, `vision_jax.models.embedding` + `vision_jax.losses.metric`) beside the same network and loss
written by hand in PyTorch.

Both: 28x28x1 inputs, a P x K batch of 10 classes x 16 examples (160 images), LeNet-5 ReLU with a 64-d embedding
head, L2-normalised embeddings, Euclidean batch-hard triplet loss with margin 0.2 (mean over anchors), Adam 1e-3.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vision_jax.bench import timing

CLASSES, PER_CLASS, SIZE, EMBED, MARGIN = 10, 16, 28, 64, 0.2
WHAT = f"siamese lenet5_relu emb{EMBED} batch-hard b{CLASSES * PER_CLASS} {SIZE}x{SIZE}x1"


def _batch() -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(0)
  images = rng.random((CLASSES * PER_CLASS, SIZE, SIZE, 1), dtype=np.float32)
  return images, np.repeat(np.arange(CLASSES), PER_CLASS).astype(np.int32)


def _ours(steps: int) -> dict[str, Any]:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from vision_jax.backends.cpu import rewrites as xla_cpu  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from vision_jax import models  # pylint: disable=import-outside-toplevel
  from vision_jax.losses.metric import batch_hard_triplet_loss  # pylint: disable=import-outside-toplevel

  images, labels = (jnp.asarray(a) for a in _batch())
  model = models.get("siamese_embedding", backbone="lenet5_relu", embed_dim=EMBED, normalize=True)
  params = model.init(jax.random.key(0), images[:1])["params"]
  tx = optax.adam(1e-3)
  opt_state = tx.init(params)

  @xla_cpu.jit_train_step
  def train_step(params, opt_state):
    def loss_fn(p):
      return batch_hard_triplet_loss(model.apply({"params": p}, images, train=True), labels, MARGIN)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  embed = xla_cpu.jit_step(lambda p: model.apply({"params": p}, images))
  return timing.jax_timings(train_step, [params, opt_state], lambda state: embed(state[0]), 3, steps)


def _torch(steps: int) -> dict[str, Any]:
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn as tnn  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  images_np, labels_np = _batch()
  images = torch.from_numpy(images_np).permute(0, 3, 1, 2).contiguous()
  labels = torch.from_numpy(labels_np)
  net = tnn.Sequential(tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(6, 16, 5), tnn.ReLU(),
                       tnn.MaxPool2d(2), tnn.Conv2d(16, 120, 5), tnn.ReLU(), tnn.Flatten(), tnn.Linear(120, 84),
                       tnn.ReLU(), tnn.Linear(84, EMBED))
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)
  same = labels[:, None] == labels[None, :]
  positive = same & ~torch.eye(len(labels), dtype=torch.bool)

  def batch_hard(embeddings):
    e = F.normalize(embeddings, dim=1)
    squared = (e * e).sum(1)[:, None] + (e * e).sum(1)[None, :] - 2.0 * e @ e.T
    distances = squared.clamp_min(0.0).masked_fill(torch.eye(len(e), dtype=torch.bool), 0.0)
    distances = torch.where(distances > 1e-16, distances, torch.zeros_like(distances)).clamp_min(1e-16).sqrt()
    hardest_positive = torch.where(positive, distances, torch.zeros_like(distances)).amax(1)
    hardest_negative = torch.where(same, torch.full_like(distances, float("inf")), distances).amin(1)
    return F.relu(hardest_positive - hardest_negative + MARGIN).mean()

  def train_step():
    opt.zero_grad(set_to_none=True)
    loss = batch_hard(net(images))
    loss.backward()
    opt.step()
    return loss

  def eval_step():
    with torch.no_grad():
      return F.normalize(net(images), dim=1)

  return timing.torch_timings(torch, train_step, eval_step, steps)


def measure(framework: str, steps: int) -> dict[str, Any]:
  """Images per second of the batch-hard train step and of the embedding pass (module docstring).

  Args:
    framework: "ours" or "torch".
    steps: timed steps (30 when 0).
  """
  steps = steps or 30
  result = _ours(steps) if framework == "ours" else _torch(steps)
  batch = CLASSES * PER_CLASS
  return timing.family_row(WHAT, batch, result)
