"""PyTorch eager peers (channels-last, fp32 or bf16 autocast), built to mirror our layer-for-layer definitions.

Needs `torch` (the `bench` extra); imports no JAX.
"""

from __future__ import annotations

import os
from typing import Any

MODELS = ("lenet5_relu", "simple_cnn", "resnet18_cifar")


def _build(name: str, channels: int, num_classes: int):
  import torch.nn as tnn  # pylint: disable=g-import-not-at-top

  if name == "lenet5_relu":  # vision_jax/models/classifiers/lenet.py, ReLU form, 28x28 input
    return tnn.Sequential(
        tnn.Conv2d(channels, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(16, 120, 5), tnn.ReLU(), tnn.Flatten(),
        tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, num_classes))
  if name == "simple_cnn":  # simple_cnn.py: conv32 same, conv32 valid, pool, drop; 64s; FC-512, drop, FC
    layers, c = [], channels
    for width in (32, 64):
      layers += [tnn.Conv2d(c, width, 3, padding=1), tnn.ReLU(), tnn.Conv2d(width, width, 3), tnn.ReLU(),
                 tnn.MaxPool2d(2), tnn.Dropout(0.25)]
      c = width
    return tnn.Sequential(*layers, tnn.Flatten(), tnn.LazyLinear(512), tnn.ReLU(), tnn.Dropout(0.5),
                          tnn.Linear(512, num_classes))
  if name == "resnet18_cifar":
    return _resnet18_cifar(channels, num_classes)
  raise ValueError(f"no PyTorch peer for {name!r}; have {', '.join(MODELS)}")


def _resnet18_cifar(channels: int, num_classes: int):
  import torch.nn as tnn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  class Basic(tnn.Module):

    def __init__(self, cin, cout, stride):
      super().__init__()
      self.c1, self.b1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False), tnn.BatchNorm2d(cout)
      self.c2, self.b2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False), tnn.BatchNorm2d(cout)
      self.proj = None
      if stride != 1 or cin != cout:
        self.proj = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

    def forward(self, x):
      y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
      return F.relu(y + (x if self.proj is None else self.proj(x)))

  layers, cin = [tnn.Conv2d(channels, 64, 3, 1, 1, bias=False), tnn.BatchNorm2d(64), tnn.ReLU()], 64
  for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
    layers += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
    cin = cout
  return tnn.Sequential(*layers, tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(512, num_classes))


def bench_model(model: str, batch: int, resolution: int, channels: int, dtype: str, steps: int,
                warmup: int) -> dict[str, Any]:
  """Images/s of one SGD-momentum train step and one eval forward in PyTorch eager, channels-last."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  from vision_jax.bench import timing  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  net = _build(model, channels, 10)
  rng = np.random.default_rng(0)
  images = torch.from_numpy(rng.random((batch, channels, resolution, resolution), dtype=np.float32))
  images = images.contiguous(memory_format=torch.channels_last)
  labels = torch.from_numpy(rng.integers(0, 10, batch))
  net(images[:1])  # materialize lazy layers
  net = net.to(memory_format=torch.channels_last)
  opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
  autocast = dtype == "bfloat16"

  def train_step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
      loss = F.cross_entropy(net(images), labels)
    loss.backward()
    opt.step()
    return loss

  def eval_step():
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
      return net(images)

  net.train()
  train = timing.time_steps(train_step, lambda r: r, warmup, steps)
  net.eval()
  evals = timing.time_steps(eval_step, lambda r: r, 2, steps)
  return {"train_images_per_sec": batch / train["median_step_sec"],
          "eval_images_per_sec": batch / evals["median_step_sec"],
          "first_step_sec": train["first_step_sec"], "peak_host_mib": timing.peak_host_memory_mib(),
          "torch": torch.__version__, "threads": torch.get_num_threads()}
