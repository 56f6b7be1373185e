"""LeNet-5 (LeCun et al., "Gradient-based learning applied to document recognition", 1998).

Two forms share one definition:
  * `lenet5`: the classic network on 32x32 inputs: conv5x5(6) - avgpool - conv5x5(16) - avgpool -
    conv5x5(120) - FC84 - FC10, tanh activations, 61,706 parameters for 10 classes.
  * `lenet5_relu`: the modern variant on 28x28 inputs: "same" padding on the first convolution (so 28x28 maps
    to the classic 28x28 feature map), ReLU and max pooling; also 61,706 parameters for 10 classes.
"""

from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import UserError
from vision_jax.layers import pooling
from vision_jax.models.registry import register_factory


def _max_pool(x: jax.Array, window: tuple[int, int], strides: tuple[int, int]) -> jax.Array:
  return pooling.max_pool_2d(x, window, strides, [(0, 0), (0, 0)])


class LeNet5(nn.Module):
  """LeNet-5 on single- or multi-channel images.

  Attributes:
    num_classes: size of the output layer.
    act: nonlinearity after every hidden layer (tanh in the paper).
    pooling: "avg" (the paper's subsampling, without its trainable coefficients) or "max".
    first_conv_padding: "VALID" for 32x32 inputs (classic) or "SAME" for 28x28 inputs.
    input_size: the spatial size the network is defined for; other sizes are rejected.
    dtype: computation dtype.
  """

  num_classes: int = 10
  act: Callable[[jax.Array], jax.Array] = jnp.tanh
  pooling: str = "avg"
  first_conv_padding: str = "VALID"
  input_size: int = 32
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    del train  # no dropout or batch norm in LeNet-5
    if images.ndim != 4 or images.shape[1:3] != (self.input_size, self.input_size):
      raise UserError(
          f"LeNet-5 ({'classic' if self.first_conv_padding == 'VALID' else 'ReLU'} form) expects images "
          f"[N, {self.input_size}, {self.input_size}, C], got shape {tuple(images.shape)}; resize or pad the "
          "input (e.g. the 'pad' data op) or pick the other LeNet-5 form.")
    pool = {"avg": nn.avg_pool, "max": _max_pool}[self.pooling]
    conv = functools.partial(nn.Conv, kernel_size=(5, 5), dtype=self.dtype)
    x = images.astype(self.dtype)
    x = self.act(conv(6, padding=self.first_conv_padding, name="conv1")(x))  # 28x28x6
    x = pool(x, (2, 2), strides=(2, 2))  # 14x14x6
    x = self.act(conv(16, padding="VALID", name="conv2")(x))  # 10x10x16
    x = pool(x, (2, 2), strides=(2, 2))  # 5x5x16
    x = self.act(conv(120, padding="VALID", name="conv3")(x))  # 1x1x120 (the paper's C5)
    x = x.reshape((x.shape[0], -1))
    x = self.act(nn.Dense(84, dtype=self.dtype, name="fc4")(x))
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)


register_factory("lenet5", functools.partial(LeNet5, act=jnp.tanh, pooling="avg",
                                             first_conv_padding="VALID", input_size=32))
register_factory("lenet5_relu", functools.partial(LeNet5, act=nn.relu, pooling="max",
                                                  first_conv_padding="SAME", input_size=28))
