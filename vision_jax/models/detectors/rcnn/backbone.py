"""ResNet body returning C2-C5 and the Feature Pyramid Network (Lin et al., 2017), in torchvision's layout.

The body is torchvision's ResNet (v1.5 bottlenecks: the stride sits on the 3x3 conv) without its pooling and
classifier, returning the outputs of `layer1`..`layer4` (strides 4, 8, 16, 32). Its norm is either batch norm
or torchvision's `FrozenBatchNorm2d` (fixed affine statistics, kept in the `batch_stats` collection so that they
are not parameters), and the first `5 - trainable_layers` of (stem, layer1, ..., layer4) get no gradient, as
torchvision's `trainable_backbone_layers` (3 by default: stem and layer1 frozen).

The FPN is torchvision's `FeaturePyramidNetwork` with `LastLevelMaxPool`: lateral 1x1 convs, top-down nearest
upsampling to the lateral's size (PyTorch's nearest rule, floor(i * in / out)), 3x3 output convs, and a 'pool'
level P6 = P5[::2, ::2] (a 1x1 max pool of stride 2).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.conv import max_pool
from vision_jax.ops.rcnn_transform import nearest_indices


class FrozenBatchNorm(nn.Module):
  """torchvision's `FrozenBatchNorm2d`: y = x * w / sqrt(var + eps) + (b - mean * w / sqrt(var + eps)).

  All four statistics live in `batch_stats` (never updated), so they are not counted as parameters.

  Attributes:
    eps: added to the variance (torchvision: 1e-5).
  """

  eps: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [..., C] to [..., C]."""
    c = x.shape[-1]
    weight = self.variable("batch_stats", "scale", jnp.ones, (c,), jnp.float32).value
    bias = self.variable("batch_stats", "bias", jnp.zeros, (c,), jnp.float32).value
    mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32).value
    var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32).value
    scale = weight * jax.lax.rsqrt(var + self.eps)
    return x * scale.astype(x.dtype) + (bias - mean * scale).astype(x.dtype)


def _norm(kind: str, train: bool, dtype, name: str) -> nn.Module:
  if kind == "frozen":
    return FrozenBatchNorm(name=name)
  if kind == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, name=name)
  raise ValueError(f"unknown norm {kind!r}; use 'batch' or 'frozen'")


class BottleneckBlock(nn.Module):
  """torchvision's `Bottleneck` (1x1, 3x3 with the stride, 1x1 expand x4) with a choice of norm.

  Attributes:
    features: inner width (the block outputs 4x as many channels).
    strides: stride of the 3x3 conv and of the projection shortcut.
    norm: "batch" or "frozen".
    dtype: computation dtype.
  """

  features: int
  strides: int = 1
  norm: str = "frozen"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H / strides, W / strides, 4 * features]."""
    out = 4 * self.features
    conv = lambda f, k, s, p, name: nn.Conv(f, (k, k), s, padding=p, use_bias=False, dtype=self.dtype, name=name)
    y = nn.relu(_norm(self.norm, train, self.dtype, "bn1")(conv(self.features, 1, 1, 0, "conv1")(x)))
    y = nn.relu(_norm(self.norm, train, self.dtype, "bn2")(conv(self.features, 3, self.strides, 1, "conv2")(y)))
    y = _norm(self.norm, train, self.dtype, "bn3")(conv(out, 1, 1, 0, "conv3")(y))
    if self.strides != 1 or x.shape[-1] != out:
      x = _norm(self.norm, train, self.dtype, "downsample_bn")(conv(out, 1, self.strides, 0, "downsample_conv")(x))
    return nn.relu(x + y)


class ResNetBody(nn.Module):
  """ResNet stem and four bottleneck stages; returns [C2, C3, C4, C5] (strides 4, 8, 16, 32).

  Attributes:
    stage_sizes: bottlenecks per stage (ResNet-50: 3, 4, 6, 3).
    width: stem channels and first stage's inner width (doubles every stage; ResNet-50: 64).
    norm: "batch" or "frozen" (torchvision's FrozenBatchNorm2d).
    trainable_layers: how many of (layer4, layer3, layer2, layer1, stem) get gradients, counted from layer4.
    dtype: computation dtype.
  """

  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  width: int = 64
  norm: str = "frozen"
  trainable_layers: int = 3
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> list[jax.Array]:
    """Args: images [N, H, W, 3]. Returns: four maps [N, H / 2**(l + 1), W / 2**(l + 1), 4 * width * 2**(l - 1)]."""
    if not 0 <= self.trainable_layers <= 5:
      raise ValueError(f"trainable_layers must be in 0..5; got {self.trainable_layers}")
    frozen = 5 - self.trainable_layers  # pieces (stem, layer1, ...) without gradients
    x = nn.Conv(self.width, (7, 7), 2, padding=3, use_bias=False, dtype=self.dtype, name="conv1")(
        images.astype(self.dtype))
    x = nn.relu(_norm(self.norm, train, self.dtype, "bn1")(x))
    x = max_pool(x, 3, 2, 1)
    if frozen >= 1:
      x = jax.lax.stop_gradient(x)
    outputs = []
    for stage, blocks in enumerate(self.stage_sizes):
      for b in range(blocks):
        x = BottleneckBlock(self.width * 2**stage, 2 if stage > 0 and b == 0 else 1, self.norm, self.dtype,
                            name=f"layer{stage + 1}_{b}")(x, train)
      if frozen >= stage + 2:
        x = jax.lax.stop_gradient(x)
      outputs.append(x)
    return outputs


def nearest_resize(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """PyTorch's `F.interpolate(mode="nearest", size=size)` on [N, H, W, C]: source index floor(i * (in / out))."""
  rows, cols = nearest_indices(x.shape[1], size[0]), nearest_indices(x.shape[2], size[1])
  return x[:, rows][:, :, cols]


class FPN(nn.Module):
  """torchvision's `FeaturePyramidNetwork` with the `LastLevelMaxPool` extra level.

  Attributes:
    out_channels: channels of every pyramid level (256 in torchvision's detectors).
    dtype: computation dtype.
  """

  out_channels: int = 256
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features: Sequence[jax.Array]) -> list[jax.Array]:
    """Args: [C2, ..., C5] maps. Returns: [P2, P3, P4, P5, P6] maps with `out_channels` channels each."""
    init = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")  # kaiming_uniform_(a=1)
    n = len(features)
    inner = [nn.Conv(self.out_channels, (1, 1), kernel_init=init, dtype=self.dtype, name=f"inner_{i}")
             for i in range(n)]
    layer = [nn.Conv(self.out_channels, (3, 3), padding=1, kernel_init=init, dtype=self.dtype, name=f"layer_{i}")
             for i in range(n)]
    last = inner[-1](features[-1])
    results = [layer[-1](last)]
    for i in range(n - 2, -1, -1):
      lateral = inner[i](features[i])
      last = lateral + nearest_resize(last, lateral.shape[1:3])
      results.insert(0, layer[i](last))
    results.append(results[-1][:, ::2, ::2])
    return results
