"""Inception modules: GoogLeNet's (Szegedy et al., "Going Deeper with Convolutions", 2014) and the
factorized modules A-E of Inception v3 (Szegedy et al., "Rethinking the Inception Architecture", 2015).

Branches run in parallel on the same input and are concatenated along channels. Branch names follow the
torchvision modules (`branch1x1`, `branch3x3dbl_2`, ...) so state dicts map by name.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.conv import Activation, ConvBN, avg_pool, max_pool


class InceptionV1(nn.Module):
  """GoogLeNet module: 1x1 | 1x1 -> 3x3 | 1x1 -> k x k | 3x3 max pool -> 1x1, concatenated.

  Attributes:
    ch1x1: channels of the 1x1 branch.
    ch3x3red, ch3x3: reduction and output channels of the 3x3 branch.
    ch5x5red, ch5x5: reduction and output channels of the "5x5" branch.
    pool_proj: channels of the pooling branch's 1x1 projection.
    branch3_kernel: window of the "5x5" branch (the paper: 5; torchvision, whose counts we pin: 3).
    bn_eps: batch-norm epsilon.
    dtype: computation dtype.
    act: activation of every conv (ReLU).
  """

  ch1x1: int
  ch3x3red: int
  ch3x3: int
  ch5x5red: int
  ch5x5: int
  pool_proj: int
  branch3_kernel: int = 3
  bn_eps: float = 1e-3
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H, W, ch1x1 + ch3x3 + ch5x5 + pool_proj]."""
    conv = functools.partial(ConvBN, bn_eps=self.bn_eps, act=self.act, dtype=self.dtype)
    b1 = conv(self.ch1x1, 1, name="branch1")(x, train)
    b2 = conv(self.ch3x3red, 1, name="branch2_0")(x, train)
    b2 = conv(self.ch3x3, 3, name="branch2_1")(b2, train)
    b3 = conv(self.ch5x5red, 1, name="branch3_0")(x, train)
    b3 = conv(self.ch5x5, self.branch3_kernel, name="branch3_1")(b3, train)
    b4 = max_pool(x, 3, 1, 1, ceil_mode=True)
    b4 = conv(self.pool_proj, 1, name="branch4_1")(b4, train)
    return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class _InceptionV3Base(nn.Module):
  """Shared settings of the Inception v3 modules.

  Attributes:
    bn_eps: batch-norm epsilon (1e-3 in both torchvision and Keras).
    bn_scale: learn batch-norm scales (torchvision: yes, Keras: no).
    count_include_pad: average pools count padded zeros (torchvision) or not (Keras "same").
    dtype: computation dtype.
    act: activation of every conv (ReLU).
  """

  bn_eps: float = 1e-3
  bn_scale: bool = True
  count_include_pad: bool = True
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  def conv(self, features: int, kernel: Any, strides: int = 1, padding: Any = "SYMMETRIC",
           name: str = "") -> ConvBN:
    return ConvBN(features, kernel, strides, padding, bn_eps=self.bn_eps, bn_scale=self.bn_scale, act=self.act,
                  dtype=self.dtype, name=name)

  def pool(self, x: jax.Array) -> jax.Array:
    return avg_pool(x, 3, 1, 1, count_include_pad=self.count_include_pad)


class InceptionA(_InceptionV3Base):
  """35x35 module: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1 (`pool_features`)."""

  pool_features: int = 32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H, W, 224 + pool_features]."""
    b1 = self.conv(64, 1, name="branch1x1")(x, train)
    b5 = self.conv(48, 1, name="branch5x5_1")(x, train)
    b5 = self.conv(64, 5, name="branch5x5_2")(b5, train)
    b3 = self.conv(64, 1, name="branch3x3dbl_1")(x, train)
    b3 = self.conv(96, 3, name="branch3x3dbl_2")(b3, train)
    b3 = self.conv(96, 3, name="branch3x3dbl_3")(b3, train)
    bp = self.conv(self.pool_features, 1, name="branch_pool")(self.pool(x), train)
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(_InceptionV3Base):
  """Grid reduction 35 -> 17: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool/2."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, (H - 3) // 2 + 1, ..., 480 + C]."""
    b3 = self.conv(384, 3, 2, "VALID", name="branch3x3")(x, train)
    bd = self.conv(64, 1, name="branch3x3dbl_1")(x, train)
    bd = self.conv(96, 3, name="branch3x3dbl_2")(bd, train)
    bd = self.conv(96, 3, 2, "VALID", name="branch3x3dbl_3")(bd, train)
    return jnp.concatenate([b3, bd, max_pool(x, 3, 2)], axis=-1)


class InceptionC(_InceptionV3Base):
  """17x17 module with factorized 7x7 convs (1x7 then 7x1) of width `channels_7x7`."""

  channels_7x7: int = 128

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H, W, 768]."""
    c7 = self.channels_7x7
    b1 = self.conv(192, 1, name="branch1x1")(x, train)
    b7 = self.conv(c7, 1, name="branch7x7_1")(x, train)
    b7 = self.conv(c7, (1, 7), name="branch7x7_2")(b7, train)
    b7 = self.conv(192, (7, 1), name="branch7x7_3")(b7, train)
    bd = self.conv(c7, 1, name="branch7x7dbl_1")(x, train)
    bd = self.conv(c7, (7, 1), name="branch7x7dbl_2")(bd, train)
    bd = self.conv(c7, (1, 7), name="branch7x7dbl_3")(bd, train)
    bd = self.conv(c7, (7, 1), name="branch7x7dbl_4")(bd, train)
    bd = self.conv(192, (1, 7), name="branch7x7dbl_5")(bd, train)
    bp = self.conv(192, 1, name="branch_pool")(self.pool(x), train)
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(_InceptionV3Base):
  """Grid reduction 17 -> 8: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool/2."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, (H - 3) // 2 + 1, ..., 512 + C]."""
    b3 = self.conv(192, 1, name="branch3x3_1")(x, train)
    b3 = self.conv(320, 3, 2, "VALID", name="branch3x3_2")(b3, train)
    b7 = self.conv(192, 1, name="branch7x7x3_1")(x, train)
    b7 = self.conv(192, (1, 7), name="branch7x7x3_2")(b7, train)
    b7 = self.conv(192, (7, 1), name="branch7x7x3_3")(b7, train)
    b7 = self.conv(192, 3, 2, "VALID", name="branch7x7x3_4")(b7, train)
    return jnp.concatenate([b3, b7, max_pool(x, 3, 2)], axis=-1)


class InceptionE(_InceptionV3Base):
  """8x8 module with expanded filter banks: 3x3 factorized into parallel 1x3 and 3x1 outputs."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H, W, 2048]."""
    b1 = self.conv(320, 1, name="branch1x1")(x, train)
    b3 = self.conv(384, 1, name="branch3x3_1")(x, train)
    b3 = jnp.concatenate([self.conv(384, (1, 3), name="branch3x3_2a")(b3, train),
                          self.conv(384, (3, 1), name="branch3x3_2b")(b3, train)], axis=-1)
    bd = self.conv(448, 1, name="branch3x3dbl_1")(x, train)
    bd = self.conv(384, 3, name="branch3x3dbl_2")(bd, train)
    bd = jnp.concatenate([self.conv(384, (1, 3), name="branch3x3dbl_3a")(bd, train),
                          self.conv(384, (3, 1), name="branch3x3dbl_3b")(bd, train)], axis=-1)
    bp = self.conv(192, 1, name="branch_pool")(self.pool(x), train)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)
