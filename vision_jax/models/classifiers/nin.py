"""Network in Network (Lin, Chen & Yan, 2013): "mlpconv" blocks (a k x k conv followed by two 1x1 convs,
a small MLP sliding over the image) and a global-average-pooling head instead of fully connected layers.
The CIFAR-10 configuration: 192-160-96 / 192-192-192 / 192-192-n; 966,986 parameters for 10 classes."""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import avg_pool, max_pool
from vision_jax.models.registry import register


class MLPConv(nn.Module):
  """k x k conv then 1x1 convs, each followed by ReLU.

  Attributes:
    widths: output channels of the k x k conv and of each 1x1 conv.
    kernel_size: window of the first conv ("same" padding).
    final_relu: apply the activation after the last 1x1 conv.
    dtype: computation dtype.
    act: the activation (ReLU).
    batch_norm: batch norm before every activation (`conv<i>_bn`; none in the paper).
  """

  widths: Sequence[int]
  kernel_size: int = 5
  final_relu: bool = True
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu
  batch_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H, W, widths[-1]]."""
    for i, width in enumerate(self.widths):
      k = self.kernel_size if i == 0 else 1
      x = nn.Conv(width, (k, k), padding="SAME", dtype=self.dtype, name=f"conv{i}")(x)
      if i < len(self.widths) - 1 or self.final_relu:
        if self.batch_norm:
          x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype, name=f"conv{i}_bn")(x)
        x = self.act(x)
    return x


@register("nin")
class NIN(nn.Module):
  """Three mlpconv blocks with pooling and dropout between them; the last emits one map per class, which
  global average pooling turns into logits.

  Attributes:
    num_classes: output classes.
    dropout_rate: dropout after the first two blocks.
    dtype: computation dtype.
    act: activation of the mlpconv layers (ReLU).
    batch_norm: batch norm before every activation of the mlpconv layers.
  """

  num_classes: int = 10
  dropout_rate: float = 0.5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu
  batch_norm: bool = False

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    block = functools.partial(MLPConv, dtype=self.dtype, act=self.act, batch_norm=self.batch_norm)
    x = block((192, 160, 96), 5, name="mlpconv1")(images.astype(self.dtype), train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(max_pool(x, 3, 2, 1, ceil_mode=True))
    x = block((192, 192, 192), 5, name="mlpconv2")(x, train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(avg_pool(x, 3, 2, 1))
    x = block((192, 192, self.num_classes), 3, final_relu=False, name="mlpconv3")(x, train)
    return jnp.mean(x, axis=(1, 2))
