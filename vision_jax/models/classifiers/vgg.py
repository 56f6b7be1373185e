"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", 2014)
and the lectures' LittleVGG (VGG9 with batch norm), all presets of one generic network.

Presets:
  * `vgg11/13/16/19` and `vgg*_bn`: torchvision layout (7x7 adaptive average pool before the classifier,
    so any input of at least 32x32 works); vgg16 has 138,357,544 parameters, vgg19 143,667,240.
  * `keras_vgg16/19`: Keras layout (flatten the last feature map as it is, no adaptive pool, no dropout).
  * `little_vgg`: conv3-64 x2, pool, conv3-128 x2, pool, conv3-256 x2, pool, FC-256, FC-256, FC-n with batch
    norm after every conv and hidden dense layer; 2,270,804 values for 32x32x3 inputs and 20 classes,
    counting batch-norm statistics as Keras' "total params" does.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import ConvBN, adaptive_avg_pool, max_pool
from vision_jax.models.registry import register_factory


class VGG(nn.Module):
  """Stages of 3x3 convs (each stage ends in a 2x2 max pool) followed by fully connected layers.

  Attributes:
    stage_convs: number of convs per stage.
    widths: channels per stage.
    num_classes: output classes.
    hidden_units: widths of the hidden fully connected layers.
    batch_norm: batch norm after every conv (conv -> BN -> ReLU).
    dense_batch_norm: batch norm after every hidden dense layer.
    adaptive_pool: average the last feature map to this size before flattening (torchvision), or None.
    conv_dropout: dropout after each pooled stage (0 for the torchvision and Keras models).
    dropout_rate: dropout after each hidden dense layer.
    dtype: computation dtype.
    act: activation after every conv and hidden dense layer (ReLU).
  """

  stage_convs: Sequence[int] = (2, 2, 3, 3, 3)
  widths: Sequence[int] = (64, 128, 256, 512, 512)
  num_classes: int = 1000
  hidden_units: Sequence[int] = (4096, 4096)
  batch_norm: bool = False
  dense_batch_norm: bool = False
  adaptive_pool: Optional[Sequence[int]] = (7, 7)
  conv_dropout: float = 0.0
  dropout_rate: float = 0.5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    x = images.astype(self.dtype)
    for stage, (n, width) in enumerate(zip(self.stage_convs, self.widths)):
      for i in range(n):
        x = ConvBN(width, 3, use_bias=True, use_bn=self.batch_norm, act=self.act, dtype=self.dtype,
                   name=f"block{stage + 1}_conv{i + 1}")(x, train)
      x = max_pool(x, 2, 2)
      if self.conv_dropout:
        x = nn.Dropout(self.conv_dropout, deterministic=not train)(x)
    if self.adaptive_pool is not None:
      x = adaptive_avg_pool(x, self.adaptive_pool)
    x = x.reshape((x.shape[0], -1))
    for i, units in enumerate(self.hidden_units):
      x = nn.Dense(units, dtype=self.dtype, name=f"fc{i + 1}")(x)
      if self.dense_batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype, name=f"fc{i + 1}_bn")(x)
      x = self.act(x)
      if self.dropout_rate:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)


_DEPTHS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
for _depth, _convs in _DEPTHS.items():
  register_factory(f"vgg{_depth}", functools.partial(VGG, stage_convs=_convs))
  register_factory(f"vgg{_depth}_bn", functools.partial(VGG, stage_convs=_convs, batch_norm=True))
for _depth in (16, 19):
  register_factory(f"keras_vgg{_depth}", functools.partial(VGG, stage_convs=_DEPTHS[_depth], adaptive_pool=None,
                                                           dropout_rate=0.0))
register_factory("little_vgg", functools.partial(
    VGG, stage_convs=(2, 2, 2), widths=(64, 128, 256), hidden_units=(256, 256), batch_norm=True,
    dense_batch_norm=True, adaptive_pool=None, conv_dropout=0.2, dropout_rate=0.5, num_classes=20))
