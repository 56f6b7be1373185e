"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", 2014) and Inception v3
(Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", 2015).

Auxiliary classifiers are opt-in (`aux_logits=True`); with them the model returns a tuple
`(logits, aux_logits...)` in both train and eval mode (GoogLeNet: two aux heads, after 4a and 4d; Inception
v3: one, after Mixed_6e), without them just the logits. Counts for 1000 classes: googlenet 6,624,904 without
aux heads; inception_v3 23,834,568 without and 27,161,264 with its aux head (torchvision). `keras_inception_v3`
is the Keras layout (no batch-norm scale, average pools that ignore padding); it has no aux head.
"""

from __future__ import annotations

import functools
from typing import Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import ConvBN, adaptive_avg_pool, avg_pool, max_pool
from vision_jax.layers.inception import (InceptionA, InceptionB, InceptionC, InceptionD, InceptionE,
                                         InceptionV1)
from vision_jax.models.registry import register, register_factory

Output = Union[jax.Array, tuple[jax.Array, ...]]


class GoogLeNetAux(nn.Module):
  """GoogLeNet auxiliary head: 4x4 average pool, 1x1 conv 128, FC-1024, dropout 0.7, FC-n."""

  num_classes: int
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to logits [N, num_classes]."""
    x = ConvBN(128, 1, bn_eps=1e-3, act=self.act, dtype=self.dtype, name="conv")(adaptive_avg_pool(x, (4, 4)), train)
    x = self.act(nn.Dense(1024, dtype=self.dtype, name="fc1")(x.reshape((x.shape[0], -1))))
    x = nn.Dropout(0.7, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="fc2")(x)


@register("googlenet")
class GoogLeNet(nn.Module):
  """GoogLeNet (torchvision layout: batch norm in every conv, 3x3 "5x5" branches).

  Attributes:
    num_classes: output classes.
    aux_logits: add the two auxiliary heads and return `(logits, aux1, aux2)`.
    dropout_rate: dropout before the classifier.
    dtype: computation dtype.
    act: activation of every conv and of the aux heads' hidden layer (ReLU).
  """

  num_classes: int = 1000
  aux_logits: bool = False
  dropout_rate: float = 0.2
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> Output:
    """Maps images [N, H, W, C] to logits [N, num_classes] (a tuple with the aux logits if enabled)."""
    conv = functools.partial(ConvBN, bn_eps=1e-3, act=self.act, dtype=self.dtype)
    block = functools.partial(InceptionV1, dtype=self.dtype, act=self.act)
    x = conv(64, 7, 2, 3, name="conv1")(images.astype(self.dtype), train)
    x = max_pool(x, 3, 2, ceil_mode=True)
    x = conv(64, 1, name="conv2")(x, train)
    x = conv(192, 3, name="conv3")(x, train)
    x = max_pool(x, 3, 2, ceil_mode=True)
    x = block(64, 96, 128, 16, 32, 32, name="inception3a")(x, train)
    x = block(128, 128, 192, 32, 96, 64, name="inception3b")(x, train)
    x = max_pool(x, 3, 2, ceil_mode=True)
    x = block(192, 96, 208, 16, 48, 64, name="inception4a")(x, train)
    aux = [GoogLeNetAux(self.num_classes, self.dtype, self.act, name="aux1")(x, train)] if self.aux_logits else []
    x = block(160, 112, 224, 24, 64, 64, name="inception4b")(x, train)
    x = block(128, 128, 256, 24, 64, 64, name="inception4c")(x, train)
    x = block(112, 144, 288, 32, 64, 64, name="inception4d")(x, train)
    if self.aux_logits:
      aux.append(GoogLeNetAux(self.num_classes, self.dtype, self.act, name="aux2")(x, train))
    x = block(256, 160, 320, 32, 128, 128, name="inception4e")(x, train)
    x = max_pool(x, 2, 2, ceil_mode=True)
    x = block(256, 160, 320, 32, 128, 128, name="inception5a")(x, train)
    x = block(384, 192, 384, 48, 128, 128, name="inception5b")(x, train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)
    return (logits, *aux) if self.aux_logits else logits


class InceptionV3Aux(nn.Module):
  """Inception v3 auxiliary head: 5x5/3 average pool, 1x1 conv 128, 5x5 conv 768, pool, FC-n."""

  num_classes: int
  bn_scale: bool = True
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, 17, 17, 768] to logits [N, num_classes]."""
    conv = functools.partial(ConvBN, bn_eps=1e-3, bn_scale=self.bn_scale, act=self.act, dtype=self.dtype)
    x = conv(128, 1, name="conv0")(avg_pool(x, 5, 3), train)
    x = conv(768, 5, padding="VALID", name="conv1")(x, train)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(jnp.mean(x, axis=(1, 2)))


class InceptionV3(nn.Module):
  """Inception v3 on inputs of at least 75x75 (299x299 in the paper).

  Attributes:
    num_classes: output classes.
    aux_logits: add the auxiliary head and return `(logits, aux)` (needs 299x299-sized inputs).
    bn_scale: batch-norm scales (torchvision yes, Keras no).
    count_include_pad: average pools count padding (torchvision) or not (Keras).
    dropout_rate: dropout before the classifier.
    dtype: computation dtype.
    act: activation of every conv (ReLU).
  """

  num_classes: int = 1000
  aux_logits: bool = False
  bn_scale: bool = True
  count_include_pad: bool = True
  dropout_rate: float = 0.5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> Output:
    """Maps images [N, H, W, C] to logits [N, num_classes] (a tuple with the aux logits if enabled)."""
    conv = functools.partial(ConvBN, bn_eps=1e-3, bn_scale=self.bn_scale, act=self.act, dtype=self.dtype)
    mod = dict(bn_scale=self.bn_scale, count_include_pad=self.count_include_pad, dtype=self.dtype, act=self.act)
    x = conv(32, 3, 2, "VALID", name="Conv2d_1a_3x3")(images.astype(self.dtype), train)
    x = conv(32, 3, 1, "VALID", name="Conv2d_2a_3x3")(x, train)
    x = conv(64, 3, name="Conv2d_2b_3x3")(x, train)
    x = max_pool(x, 3, 2)
    x = conv(80, 1, name="Conv2d_3b_1x1")(x, train)
    x = conv(192, 3, 1, "VALID", name="Conv2d_4a_3x3")(x, train)
    x = max_pool(x, 3, 2)
    x = InceptionA(pool_features=32, name="Mixed_5b", **mod)(x, train)
    x = InceptionA(pool_features=64, name="Mixed_5c", **mod)(x, train)
    x = InceptionA(pool_features=64, name="Mixed_5d", **mod)(x, train)
    x = InceptionB(name="Mixed_6a", **mod)(x, train)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(channels_7x7=c7, name=name, **mod)(x, train)
    aux = InceptionV3Aux(self.num_classes, self.bn_scale, self.dtype, self.act, name="AuxLogits")(x, train) \
        if self.aux_logits else None
    x = InceptionD(name="Mixed_7a", **mod)(x, train)
    x = InceptionE(name="Mixed_7b", **mod)(x, train)
    x = InceptionE(name="Mixed_7c", **mod)(x, train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)
    return (logits, aux) if self.aux_logits else logits


register_factory("inception_v3", InceptionV3)
register_factory("keras_inception_v3", functools.partial(InceptionV3, bn_scale=False, count_include_pad=False,
                                                         dropout_rate=0.0))
