"""The PyTorch peer of our U-Net (`vision_jax.models.segmentation.unet.UNet`), written by hand with the same
layers in the same order, and the copy of our variables into it (for the bench and for parity tests).

torch is imported inside the functions: the library does not depend on it.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def torch_unet(channels: int, num_classes: int, depth: int, width: int, padding: str = "same",
               batch_norm: bool = True) -> Any:
  """A `torch.nn.Module` U-Net: double 3x3 convs (+ BN) + ReLU, 2x2 max pool, 2x2/2 transposed up-convs,
  centre-cropped skips concatenated before the upsampled map, a 1x1 classifier (NCHW)."""
  import torch  # pylint: disable=import-outside-toplevel
  from torch import nn  # pylint: disable=import-outside-toplevel

  pad = 1 if padding == "same" else 0

  def double(cin: int, cout: int) -> nn.Sequential:
    layers = []
    for i in range(2):
      layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=pad, bias=not batch_norm))
      if batch_norm:
        layers.append(nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))
      layers.append(nn.ReLU())
    return nn.Sequential(*layers)

  class UNet(nn.Module):
    """The peer network."""

    def __init__(self):
      super().__init__()
      widths = [width * 2**i for i in range(depth + 1)]
      self.down = nn.ModuleList([double(channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth)])
      self.bottom = double(widths[depth - 1], widths[depth])
      self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)])
      self.dec = nn.ModuleList([double(2 * widths[i], widths[i]) for i in range(depth)])
      self.logits = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x):
      skips = []
      for block in self.down:
        x = block(x)
        skips.append(x)
        x = torch.nn.functional.max_pool2d(x, 2)
      x = self.bottom(x)
      for level in reversed(range(depth)):
        x = self.up[level](x)
        skip = skips[level]
        top, left = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
        skip = skip[:, :, top:top + x.shape[2], left:left + x.shape[3]]
        x = self.dec[level](torch.cat([skip, x], 1))
      return self.logits(x)

  return UNet()


def _double_conv_names(prefix: str, batch_norm: bool) -> list[tuple[str, str, int]]:
  """(our module path, torch module prefix, torch Sequential index) of a DoubleConv's layers."""
  per = 3 if batch_norm else 2
  names = []
  for i in range(2):
    names.append((f"{prefix}/conv{i + 1}", "conv", per * i))
    if batch_norm:
      names.append((f"{prefix}/bn{i + 1}", "bn", per * i + 1))
  return names


def load_our_variables(net: Any, variables: Mapping[str, Any], depth: int, batch_norm: bool) -> None:
  """Copies our U-Net's variables ({"params", "batch_stats"?}) into `torch_unet`'s modules, in place."""
  import torch  # pylint: disable=import-outside-toplevel

  params, stats = variables["params"], variables.get("batch_stats", {})

  def get(tree, path):
    for key in path.split("/"):
      tree = tree[key]
    return tree

  def put(tensor, array):
    with torch.no_grad():
      tensor.copy_(torch.from_numpy(np.array(array, np.float32)))  # a writable copy

  blocks = [(f"down{i + 1}", net.down[i]) for i in range(depth)] + [("bottom", net.bottom)]
  blocks += [(f"dec{i + 1}", net.dec[i]) for i in range(depth)]
  for prefix, sequential in blocks:
    for path, kind, index in _double_conv_names(prefix, batch_norm):
      module = sequential[index]
      if kind == "conv":
        put(module.weight, np.transpose(get(params, path)["kernel"], (3, 2, 0, 1)))
        if module.bias is not None:
          put(module.bias, get(params, path)["bias"])
      else:
        put(module.weight, get(params, path)["scale"])
        put(module.bias, get(params, path)["bias"])
        put(module.running_mean, get(stats, path)["mean"])
        put(module.running_var, get(stats, path)["var"])
  for i in range(depth):
    # Our transposed-conv kernel [kh, kw, C_in, C_out] is torch's ConvTranspose2d weight [C_in, C_out, kh, kw].
    put(net.up[i].weight, np.transpose(params[f"up{i + 1}"]["kernel"], (2, 3, 0, 1)))
    put(net.up[i].bias, params[f"up{i + 1}"]["bias"])
  put(net.logits.weight, np.transpose(params["logits"]["kernel"], (3, 2, 0, 1)))
  put(net.logits.bias, params["logits"]["bias"])
