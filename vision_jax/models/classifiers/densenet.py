"""DenseNet-121/169/201 (Huang et al., "Densely Connected Convolutional Networks", 2016); torchvision layout
(densenet121: 7,978,856 parameters for 1000 classes), `keras_densenet*` with Keras' batch-norm eps 1.001e-5."""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import max_pool
from vision_jax.layers.dense import DenseBlock, Transition
from vision_jax.models.registry import register_factory


class DenseNet(nn.Module):
  """7x7/2 conv, 3x3/2 max pool, dense blocks joined by halving transitions, BN-ReLU, pool, dense.

  Attributes:
    block_config: dense layers per block.
    growth_rate: channels added per dense layer.
    num_init_features: channels of the stem conv.
    bn_size: bottleneck width multiplier of the dense layers.
    num_classes: output classes.
    bn_eps: batch-norm epsilon.
    dtype: computation dtype.
    act: activation after every batch norm (ReLU).
  """

  block_config: Sequence[int] = (6, 12, 24, 16)
  growth_rate: int = 32
  num_init_features: int = 64
  bn_size: int = 4
  num_classes: int = 1000
  bn_eps: float = 1e-5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    bn = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=self.bn_eps,
                           dtype=self.dtype)
    x = nn.Conv(self.num_init_features, (7, 7), 2, padding=[(3, 3)] * 2, use_bias=False, dtype=self.dtype,
                name="conv0")(images.astype(self.dtype))
    x = max_pool(self.act(bn(name="norm0")(x)), 3, 2, 1)
    for i, n in enumerate(self.block_config):
      x = DenseBlock(n, self.growth_rate, self.bn_size, self.bn_eps, self.dtype, self.act,
                     name=f"denseblock{i + 1}")(x, train)
      if i < len(self.block_config) - 1:
        x = Transition(x.shape[-1] // 2, self.bn_eps, self.dtype, self.act, name=f"transition{i + 1}")(x, train)
    x = self.act(bn(name="norm5")(x))
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(jnp.mean(x, axis=(1, 2)))


_CONFIGS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}
for _depth, _blocks in _CONFIGS.items():
  register_factory(f"densenet{_depth}", functools.partial(DenseNet, block_config=_blocks))
  register_factory(f"keras_densenet{_depth}", functools.partial(DenseNet, block_config=_blocks, bn_eps=1.001e-5))
