"""Convolutional classifiers for inputs of any spatial rank: 1D signals [N, T, C] and 3D volumes [N, D, H, W, C].

One generic network, `ConvNetND`, stacks conv - batch norm - ReLU - max-pool blocks over `spatial_dims` axes and
ends in global average pooling and a linear classifier; `cnn1d` and `cnn3d` are its presets. Each convolution
and pooling window follows the output-size rule floor((n + 2p - f) / s) + 1 on every spatial axis
(`vision_jax.layers.conv.output_size`).

Example:
  >>> model = get("cnn1d", num_classes=4)
  >>> variables = model.init(jax.random.key(0), jnp.zeros((2, 1024, 1)))
  >>> model.apply(variables, jnp.zeros((2, 1024, 1))).shape
  (2, 4)
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import UserError
from vision_jax.models.registry import register_factory

_KIND = {1: "signals [N, T, C]", 2: "images [N, H, W, C]", 3: "volumes [N, D, H, W, C]"}


class ConvNetND(nn.Module):
  """Conv-BN-ReLU-max-pool blocks over `spatial_dims` axes, global average pooling, dropout, linear logits.

  Attributes:
    num_classes: output classes.
    spatial_dims: 1 (signals), 2 (images) or 3 (volumes).
    widths: output channels of the blocks' convolutions.
    kernel_size: convolution window along every spatial axis.
    strides: convolution stride along every spatial axis.
    padding: "SAME" or "VALID" convolutions.
    pool: max-pooling window and stride after each block (1 = none); a block whose input is already smaller
      than the window skips its pooling.
    dropout: dropout rate before the classifier.
    dtype: computation dtype.
  """

  num_classes: int = 4
  spatial_dims: int = 1
  widths: Sequence[int] = (16, 32, 64, 64)
  kernel_size: int = 7
  strides: int = 1
  padding: str = "SAME"
  pool: int = 2
  dropout: float = 0.2
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
    """Maps inputs [N, *spatial, C] (`spatial_dims` spatial axes) to logits [N, num_classes]."""
    if inputs.ndim != self.spatial_dims + 2:
      raise UserError(f"a {self.spatial_dims}D convolutional network expects {_KIND[self.spatial_dims]}, got "
                      f"shape {tuple(inputs.shape)}; pick the model made for this data's rank")
    x = inputs.astype(self.dtype)
    window = (self.pool,) * self.spatial_dims
    for i, width in enumerate(self.widths):
      x = nn.Conv(width, (self.kernel_size,) * self.spatial_dims, strides=self.strides, padding=self.padding,
                  use_bias=False, dtype=self.dtype, name=f"conv{i}")(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype, name=f"bn{i}")(x)
      x = nn.relu(x)
      if self.pool > 1 and min(x.shape[1:-1]) >= self.pool:
        x = nn.max_pool(x, window, strides=window)
    x = jnp.mean(x, axis=tuple(range(1, 1 + self.spatial_dims)))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)


register_factory("cnn1d", functools.partial(ConvNetND, spatial_dims=1, widths=(16, 32, 64, 64), kernel_size=7))
register_factory("cnn3d", functools.partial(ConvNetND, spatial_dims=3, widths=(8, 16, 32), kernel_size=3))
NAMES = ("cnn1d", "cnn3d")
