"""DenseNet blocks (Huang et al., "Densely Connected Convolutional Networks", 2016).

Every layer sees the concatenation of all earlier feature maps of its block; transitions halve channels and
resolution between blocks. Pre-activation order: BN -> ReLU -> conv.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.conv import Activation, avg_pool


class DenseLayer(nn.Module):
  """BN-ReLU-1x1 conv (bn_size * growth) - BN-ReLU-3x3 conv (growth); returns the new `growth` channels.

  Attributes:
    growth_rate: channels added by the layer.
    bn_size: bottleneck width multiplier.
    bn_eps: batch-norm epsilon (torchvision 1e-5, Keras 1.001e-5).
    dtype: computation dtype.
    act: activation after each batch norm (ReLU).
  """

  growth_rate: int = 32
  bn_size: int = 4
  bn_eps: float = 1e-5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H, W, growth_rate]."""
    bn = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=self.bn_eps, dtype=self.dtype,
                                   name=name)
    y = self.act(bn("norm1")(x))
    y = nn.Conv(self.bn_size * self.growth_rate, (1, 1), use_bias=False, dtype=self.dtype, name="conv1")(y)
    y = self.act(bn("norm2")(y))
    return nn.Conv(self.growth_rate, (3, 3), padding=[(1, 1), (1, 1)], use_bias=False, dtype=self.dtype,
                   name="conv2")(y)


class DenseBlock(nn.Module):
  """`num_layers` dense layers, each appending `growth_rate` channels to the running concatenation.

  Attributes:
    num_layers: layers in the block.
    growth_rate: channels added per layer.
    bn_size: bottleneck width multiplier.
    bn_eps: batch-norm epsilon.
    dtype: computation dtype.
    act: activation of the dense layers.
  """

  num_layers: int
  growth_rate: int = 32
  bn_size: int = 4
  bn_eps: float = 1e-5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H, W, C + num_layers * growth_rate]."""
    for i in range(self.num_layers):
      y = DenseLayer(self.growth_rate, self.bn_size, self.bn_eps, self.dtype, self.act,
                     name=f"denselayer{i + 1}")(x, train)
      x = jnp.concatenate([x, y], axis=-1)
    return x


class Transition(nn.Module):
  """BN-ReLU-1x1 conv to `features` channels, then 2x2 average pooling with stride 2.

  Attributes:
    features: output channels (DenseNet: half the input).
    bn_eps: batch-norm epsilon.
    dtype: computation dtype.
    act: activation after the batch norm.
  """

  features: int
  bn_eps: float = 1e-5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H // 2, W // 2, features]."""
    x = self.act(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=self.bn_eps, dtype=self.dtype,
                              name="norm")(x))
    x = nn.Conv(self.features, (1, 1), use_bias=False, dtype=self.dtype, name="conv")(x)
    return avg_pool(x, 2, 2)
