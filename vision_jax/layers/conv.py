"""Convolution building blocks: conv-bn-act, depthwise-separable convs, pooling with framework conventions.

Padding is named by convention because imported weights only reproduce their source when the padding does:
  * "SYMMETRIC": (k - 1) // 2 zeros on every side (PyTorch `padding=k // 2`, Keras `ZeroPadding2D` stems).
  * "SAME": TensorFlow/Keras "same" (for stride 2 and even sizes the extra zero goes at the end).
  * "VALID": no padding.
  * an int p, or explicit ((top, bottom), (left, right)) pairs.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers import pooling

Padding = Union[str, int, Sequence[tuple[int, int]]]
Activation = Optional[Callable[[jax.Array], jax.Array]]


def output_size(n: int, f: int, p: int = 0, s: int = 1) -> int:
  """The lectures' output size floor((n + 2p - f) / s) + 1 of a convolution or pooling window.

  Args:
    n: input size along one spatial axis.
    f: window (filter) size.
    p: zeros added on each side.
    s: stride.

  Returns:
    The output size along that axis.
  """
  return (n + 2 * p - f) // s + 1


def resolve_padding(padding: Padding, kernel_size: Sequence[int]) -> Union[str, list[tuple[int, int]]]:
  """Turns a named padding convention into what `flax.linen.Conv` accepts."""
  if isinstance(padding, int):
    return [(padding, padding)] * len(kernel_size)
  if isinstance(padding, str):
    if padding == "SYMMETRIC":
      return [((k - 1) // 2, (k - 1) // 2) for k in kernel_size]
    if padding in ("SAME", "VALID"):
      return padding
    raise ValueError(f"unknown padding {padding!r}; use SYMMETRIC, SAME, VALID, an int or explicit pairs")
  return [tuple(p) for p in padding]


def _pair(v: Union[int, Sequence[int]]) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


class ConvBN(nn.Module):
  """Convolution, optional batch norm, optional activation ("conv-bn-act").

  Submodules are named `conv` and `bn` so that weight importers can address them.

  Attributes:
    features: output channels.
    kernel_size: window size, int or (kh, kw).
    strides: stride, int or (sh, sw).
    padding: a convention of this module ("SYMMETRIC", "SAME", "VALID", int, pairs).
    groups: feature groups (channels in = groups for a depthwise conv).
    use_bias: conv bias (off by default because batch norm has its own shift).
    use_bn: whether to add batch norm after the conv.
    bn_eps: batch-norm epsilon (PyTorch 1e-5, Keras 1e-3).
    bn_momentum: running-average decay (PyTorch momentum 0.1 is 0.9 here).
    bn_scale: learn a batch-norm scale (Keras InceptionV3 has none).
    act: activation after the norm, or None.
    dtype: computation dtype.
  """

  features: int
  kernel_size: Union[int, Sequence[int]] = 3
  strides: Union[int, Sequence[int]] = 1
  padding: Padding = "SYMMETRIC"
  groups: int = 1
  use_bias: bool = False
  use_bn: bool = True
  bn_eps: float = 1e-5
  bn_momentum: float = 0.9
  bn_scale: bool = True
  act: Activation = nn.relu
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H', W', features]."""
    k = _pair(self.kernel_size)
    x = nn.Conv(self.features, k, strides=_pair(self.strides), padding=resolve_padding(self.padding, k),
                feature_group_count=self.groups, use_bias=self.use_bias, dtype=self.dtype, name="conv")(x)
    if self.use_bn:
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=self.bn_eps,
                       use_scale=self.bn_scale, dtype=self.dtype, name="bn")(x)
    if self.act is not None:
      x = self.act(x)
    return x


class SeparableConv(nn.Module):
  """Depthwise k x k conv followed by a pointwise 1x1 conv (Keras `SeparableConv2D`), no norm in between.

  Attributes:
    features: output channels of the pointwise conv.
    kernel_size: depthwise window.
    strides: depthwise stride.
    padding: padding convention of the depthwise conv.
    use_bias: bias on the pointwise conv.
    dtype: computation dtype.
  """

  features: int
  kernel_size: int = 3
  strides: int = 1
  padding: Padding = "SAME"
  use_bias: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [N, H, W, C] to [N, H', W', features]."""
    k = _pair(self.kernel_size)
    x = nn.Conv(x.shape[-1], k, strides=_pair(self.strides), padding=resolve_padding(self.padding, k),
                feature_group_count=x.shape[-1], use_bias=False, dtype=self.dtype, name="depthwise")(x)
    return nn.Conv(self.features, (1, 1), use_bias=self.use_bias, dtype=self.dtype, name="pointwise")(x)


class DepthwiseSeparable(nn.Module):
  """MobileNet v1 block: depthwise conv-bn-act then pointwise conv-bn-act (Howard et al., 2017).

  Attributes:
    features: output channels.
    strides: depthwise stride.
    padding: depthwise padding convention.
    bn_eps: batch-norm epsilon.
    act: activation (ReLU6 in MobileNet).
    dtype: computation dtype.
  """

  features: int
  strides: int = 1
  padding: Padding = "SAME"
  bn_eps: float = 1e-3
  act: Activation = nn.relu6
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H / strides, W / strides, features]."""
    x = ConvBN(x.shape[-1], 3, self.strides, self.padding, groups=x.shape[-1], bn_eps=self.bn_eps,
               act=self.act, dtype=self.dtype, name="dw")(x, train)
    return ConvBN(self.features, 1, 1, "VALID", bn_eps=self.bn_eps, act=self.act, dtype=self.dtype,
                  name="pw")(x, train)


def _pool_pads(n: int, window: int, stride: int, pad: int, ceil_mode: bool) -> tuple[int, int]:
  """PyTorch pooling pads (lo, hi) along one axis, including the extra end padding of `ceil_mode`."""
  span = n + 2 * pad - window
  out = (-(-span // stride) if ceil_mode else span // stride) + 1
  if ceil_mode and (out - 1) * stride >= n + pad:  # the last window may not start inside the right padding
    out -= 1
  return pad, max((out - 1) * stride + window - n - pad, 0)


def max_pool(x: jax.Array, window: int, stride: int, padding: Union[str, int] = 0,
             ceil_mode: bool = False) -> jax.Array:
  """Max pooling over [N, H, W, C] with PyTorch (int padding, `ceil_mode`) or Keras ("SAME"/"VALID") rules."""
  windows, strides = (window, window), (stride, stride)
  if padding == "SAME":
    pads = pooling.same_pads(x.shape[1:3], windows, strides)
  elif padding == "VALID":
    pads = [(0, 0), (0, 0)]
  else:
    pads = [_pool_pads(n, window, stride, padding, ceil_mode) for n in x.shape[1:3]]
  return pooling.max_pool_2d(x, windows, strides, pads)


def avg_pool(x: jax.Array, window: int, stride: int, padding: Union[str, int] = 0,
             count_include_pad: bool = True) -> jax.Array:
  """Average pooling over [N, H, W, C].

  Args:
    x: [N, H, W, C].
    window: square window size.
    stride: stride.
    padding: int (zeros on each side) or "SAME"/"VALID".
    count_include_pad: divide by the full window (PyTorch default) or only by the real pixels (Keras "same").

  Returns:
    [N, H', W', C].
  """
  if isinstance(padding, int):
    padding = [(padding, padding)] * 2
  return nn.avg_pool(x, (window, window), (stride, stride), padding, count_include_pad=count_include_pad)


def adaptive_avg_pool(x: jax.Array, output_size: Sequence[int]) -> jax.Array:
  """PyTorch `AdaptiveAvgPool2d`: bin i of n covers [floor(i * H / n), ceil((i + 1) * H / n)).

  Args:
    x: [N, H, W, C].
    output_size: (h, w) of the result.

  Returns:
    [N, h, w, C].
  """
  def pool_axis(x: jax.Array, axis: int, n_out: int) -> jax.Array:
    n = x.shape[axis]
    if n == n_out:
      return x
    bins = [jnp.mean(jax.lax.slice_in_dim(x, (i * n) // n_out, math.ceil((i + 1) * n / n_out), axis=axis),
                     axis=axis, keepdims=True) for i in range(n_out)]
    return jnp.concatenate(bins, axis=axis)

  return pool_axis(pool_axis(x, 1, output_size[0]), 2, output_size[1])
