"""ResNet (He et al., "Deep Residual Learning for Image Recognition", 2015): one generic network, presets
for each depth.

Presets:
  * `resnet18/34/50/101/152`: torchvision "v1.5" layout (stride on the bottleneck's 3x3 conv);
    11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 / 60,192,808 parameters for 1000 classes.
  * `resnet18_cifar`, `resnet34_cifar`, `resnet50_cifar`: CIFAR stem (one 3x3 stride-1 conv, no max pool)
    for 32x32 inputs.
  * `keras_resnet50/101/152`: Keras `ResNet50` layout (original v1: stride on the first 1x1 conv, conv biases,
    batch-norm epsilon 1.001e-5).
"""

from __future__ import annotations

import functools
from typing import Sequence, Type

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import ConvBN, max_pool
from vision_jax.layers.residual import BasicBlock, Bottleneck
from vision_jax.models.registry import register_factory


class ResNet(nn.Module):
  """Stem, four stages of residual blocks (widths 64-128-256-512, stride 2 from stage 2), global average
  pool, dense.

  Attributes:
    stage_sizes: blocks per stage.
    block_cls: `BasicBlock` or `Bottleneck`.
    num_classes: output classes.
    width: channels of the first stage (doubles every stage).
    stem: "imagenet" (7x7/2 conv + 3x3/2 max pool) or "cifar" (3x3/1 conv).
    stride_on_1x1: bottleneck stride on the first 1x1 conv (v1, Keras) instead of the 3x3 (v1.5).
    conv_bias: conv biases (Keras).
    bn_eps: batch-norm epsilon.
    dtype: computation dtype.
    act: activation of the stem and the blocks (ReLU).
  """

  stage_sizes: Sequence[int]
  block_cls: Type[nn.Module] = BasicBlock
  num_classes: int = 1000
  width: int = 64
  stem: str = "imagenet"
  stride_on_1x1: bool = False
  conv_bias: bool = False
  bn_eps: float = 1e-5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    x = images.astype(self.dtype)
    kw = dict(use_bias=self.conv_bias, bn_eps=self.bn_eps, act=self.act, dtype=self.dtype)
    if self.stem == "imagenet":
      x = ConvBN(self.width, 7, 2, 3, name="stem", **kw)(x, train)
      x = max_pool(x, 3, 2, 1)
    elif self.stem == "cifar":
      x = ConvBN(self.width, 3, 1, 1, name="stem", **kw)(x, train)
    else:
      raise ValueError(f"unknown ResNet stem {self.stem!r}")
    for stage, n in enumerate(self.stage_sizes):
      for b in range(n):
        x = self.block_cls(self.width * 2**stage, strides=2 if stage > 0 and b == 0 else 1,
                           conv_bias=self.conv_bias, bn_eps=self.bn_eps, stride_on_1x1=self.stride_on_1x1,
                           dtype=self.dtype, act=self.act, name=f"layer{stage + 1}_{b}")(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)


_DEPTHS = {18: ((2, 2, 2, 2), BasicBlock), 34: ((3, 4, 6, 3), BasicBlock), 50: ((3, 4, 6, 3), Bottleneck),
           101: ((3, 4, 23, 3), Bottleneck), 152: ((3, 8, 36, 3), Bottleneck)}
for _depth, (_sizes, _block) in _DEPTHS.items():
  register_factory(f"resnet{_depth}", functools.partial(ResNet, stage_sizes=_sizes, block_cls=_block))
for _depth in (18, 34, 50):
  register_factory(f"resnet{_depth}_cifar", functools.partial(
      ResNet, stage_sizes=_DEPTHS[_depth][0], block_cls=_DEPTHS[_depth][1], stem="cifar", num_classes=10))
for _depth in (50, 101, 152):
  register_factory(f"keras_resnet{_depth}", functools.partial(
      ResNet, stage_sizes=_DEPTHS[_depth][0], block_cls=Bottleneck, stride_on_1x1=True, conv_bias=True,
      bn_eps=1.001e-5))
