"""Bench row of the localisation / sliding-window family.

Train step: the localisation network of `configs/localization_digits.py:keypoints,model=simple_cnn,crop=` (zoo
`simple_cnn` trunk with widths (16, 32), FC-256, feature width 256, no dropout; class, box and 4-keypoint heads on
the trunk's features, not the config's default crop classifier) on a batch of 32 64x64x1
images, loss CE + smooth-L1 (beta 0.02) of the sigmoid-decoded box + smooth-L1 of the keypoints, Adam 1e-3; ours
(JAX) beside the same network and loss written by hand in PyTorch (`_torch_net`).

"ours" also times the sliding window (`models.detectors.sliding_window`, widths (16, 32), hidden 128, a context
ring of 8 pixels: 44x44 crops, as `configs/sliding_window_digits.py`) on a batch of 8 96x96 scenes padded by the
context, at stride 4: the crop loop (every crop cut, then the classifier on all crops in one batched call)
against the convolutional form (one call on the padded scenes), and reports the speed-up in `note`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vision_jax.bench import timing

BATCH, SIZE, CLASSES, KEYPOINTS, FEATURES = 32, 64, 10, 4, 256
WIDTHS, HIDDEN = (16, 32), 256
SCENES, SCENE_SIZE, CONTEXT = 8, 96, 8
WHAT = f"localization simple_cnn w{WIDTHS[0]}-{WIDTHS[1]} + box + {KEYPOINTS} keypoints b{BATCH} {SIZE}x{SIZE}x1"


def _batch() -> dict[str, np.ndarray]:
  rng = np.random.default_rng(0)
  corner = rng.uniform(0, SIZE / 2, (BATCH, 2))
  boxes = np.concatenate([corner, corner + rng.uniform(8, SIZE / 2, (BATCH, 2))], 1) / SIZE
  return {"image": rng.random((BATCH, SIZE, SIZE, 1), dtype=np.float32),
          "label": rng.integers(0, CLASSES, BATCH).astype(np.int32), "box": boxes.astype(np.float32),
          "keypoints": rng.uniform(0, 1, (BATCH, KEYPOINTS, 2)).astype(np.float32)}


def _window_speedup(steps: int) -> tuple[float, float]:
  """(crop loop seconds, convolutional form seconds) per batch of scenes, medians."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from vision_jax.backends.cpu import rewrites as xla_cpu  # pylint: disable=import-outside-toplevel
  from vision_jax.models.detectors import sliding_window as sw  # pylint: disable=import-outside-toplevel

  model = sw.WindowClassifier(CLASSES, widths=WIDTHS, hidden=128, context=CONTEXT)
  conv_model = sw.ConvolutionalWindowNet(CLASSES, widths=WIDTHS, hidden=128, context=CONTEXT)
  size = sw.crop_size(CONTEXT)
  params = model.init(jax.random.key(0), jnp.zeros((1, size, size, 1)))["params"]
  conv_params = sw.to_convolutional(params)
  scenes = np.random.default_rng(1).random((SCENES, SCENE_SIZE, SCENE_SIZE, 1), dtype=np.float32)
  scenes = jnp.asarray(np.pad(scenes, ((0, 0), (CONTEXT, CONTEXT), (CONTEXT, CONTEXT), (0, 0))))

  @xla_cpu.jit_step
  def crop_loop(params, images):
    crops = sw.crops_at_stride(images, window=size)
    return model.apply({"params": params}, crops.reshape((-1,) + crops.shape[3:]))["logits"]

  conv_form = xla_cpu.jit_step(lambda p, images: conv_model.apply({"params": p}, images)["logits"])
  loop = timing.time_steps(lambda: crop_loop(params, scenes), jax.block_until_ready, 3, steps)
  conv = timing.time_steps(lambda: conv_form(conv_params, scenes), jax.block_until_ready, 3, steps)
  return loop["median_step_sec"], conv["median_step_sec"]


def _ours(steps: int) -> dict[str, Any]:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from vision_jax.backends.cpu import rewrites as xla_cpu  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from vision_jax.losses import localization as losses  # pylint: disable=import-outside-toplevel
  from vision_jax.losses.classification import cross_entropy  # pylint: disable=import-outside-toplevel
  from vision_jax.models.detectors import localization as loc  # pylint: disable=import-outside-toplevel

  batch = {k: jnp.asarray(v) for k, v in _batch().items()}
  model = loc.build("simple_cnn", CLASSES, KEYPOINTS, FEATURES, {"dropout": 0.0},
                    widths=WIDTHS, hidden_units=HIDDEN)
  params = model.init(jax.random.key(0), batch["image"][:1])["params"]
  tx = optax.adam(1e-3)
  state = [params, tx.init(params)]
  visible = jnp.ones((BATCH, KEYPOINTS, 1))

  @xla_cpu.jit_train_step
  def train_step(params, opt_state):
    def loss_fn(p):
      out = model.apply({"params": p}, batch["image"], train=True)
      loss = (cross_entropy(out["logits"], batch["label"]) + losses.box_smooth_l1(out["boxes"], batch["box"], 0.02)
              + losses.keypoint_loss(out["keypoints"], jnp.concatenate([batch["keypoints"], visible], -1), 0.02))
      return jnp.mean(loss)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  train = timing.jax_timings(train_step, state, None, 3, steps)["train"]
  loop_sec, conv_sec = _window_speedup(steps)
  note = (f"jax {jax.__version__}; sliding window {SCENES}x{SCENE_SIZE}x{SCENE_SIZE} stride 4, context {CONTEXT}: "
          f"crop loop "
          f"{loop_sec * 1e3:.1f} ms, convolutional form {conv_sec * 1e3:.1f} ms, speed-up {loop_sec / conv_sec:.1f}x")
  return {"train": train, "note": note, "conv_speedup": loop_sec / conv_sec}


def _torch_net(torch):
  """The localisation network in PyTorch (same layers, shapes and head decoding as ours)."""
  nn = torch.nn

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      a, b = WIDTHS
      self.trunk = nn.Sequential(
          nn.Conv2d(1, a, 3, padding=1), nn.ReLU(), nn.Conv2d(a, a, 3), nn.ReLU(), nn.MaxPool2d(2),
          nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.Conv2d(b, b, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
          nn.Linear(b * 14 * 14, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, FEATURES), nn.ReLU())
      self.class_head, self.box_head = nn.Linear(FEATURES, CLASSES), nn.Linear(FEATURES, 4)
      self.keypoint_head = nn.Linear(FEATURES, 3 * KEYPOINTS)

    def forward(self, x):
      f = self.trunk(x)
      cx, cy, w, h = torch.sigmoid(self.box_head(f)).unbind(-1)
      boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
      keypoints = 0.5 + self.keypoint_head(f).view(-1, KEYPOINTS, 3)[..., :2]
      return self.class_head(f), boxes, keypoints

  return Net()


def _torch(steps: int) -> dict[str, Any]:
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  arrays = _batch()
  images = torch.from_numpy(arrays["image"]).permute(0, 3, 1, 2).contiguous()
  labels = torch.from_numpy(arrays["label"]).long()
  boxes, keypoints = torch.from_numpy(arrays["box"]), torch.from_numpy(arrays["keypoints"])
  net = _torch_net(torch)
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)

  def train_step():
    opt.zero_grad(set_to_none=True)
    logits, pred_boxes, pred_keypoints = net(images)
    loss = (F.cross_entropy(logits, labels)
            + F.smooth_l1_loss(pred_boxes, boxes, beta=0.02, reduction="sum") / BATCH
            + F.smooth_l1_loss(pred_keypoints, keypoints, beta=0.02, reduction="sum") / (BATCH * KEYPOINTS))
    loss.backward()
    opt.step()
    return loss

  return timing.torch_timings(torch, train_step, None, steps)


def measure(framework: str, steps: int) -> dict[str, Any]:
  """Images per second of the localisation train step (module docstring); "ours" adds the sliding-window
  convolutional form's speed-up over the crop loop (`conv_speedup`, also in `note`).

  Args:
    framework: "ours" or "torch".
    steps: timed steps (20 when 0).
  """
  steps = steps or 20
  result = _ours(steps) if framework == "ours" else _torch(steps)
  out = {"what": WHAT, "unit": "images", "train_per_sec": BATCH / result["train"]["median_step_sec"],
         "compile_sec": result["train"]["first_step_sec"], "note": result["note"]}
  if "conv_speedup" in result:
    out["conv_speedup"] = result["conv_speedup"]
  return out
