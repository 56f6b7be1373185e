"""Learned and fixed upsampling for dense prediction (NHWC): transposed convolution, FCN's bilinear kernel,
resize-then-convolve and pixel shuffle.

Transposed convolution here is the lecture's (and PyTorch's `ConvTranspose2d`) "scatter" form: every input pixel
multiplies the whole kernel and adds it into the output at `stride` times its position; `padding` p then crops p
pixels from every side and `output_padding` adds rows/columns at the bottom/right, so

  out = (n - 1) * stride - 2 * padding + kernel + output_padding.

Kernels are stored [kh, kw, C_in, C_out] in that scatter orientation (PyTorch's weight [C_in, C_out, kh, kw]
transposed by (2, 3, 0, 1)). Computing it as a convolution of the stride-dilated input needs the kernel flipped
in space; `transposed_conv` applies that flip. `flax.linen.ConvTranspose` gives the same numbers only with
`transpose_kernel=True` (its kernel then is [kh, kw, C_out, C_in]); with its default `transpose_kernel=False` it
correlates with the unflipped kernel, which is the lecture's result with the kernel rotated by 180 degrees.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import ConfigError

RESIZE_METHODS = ("nearest", "bilinear")
PIXEL_SHUFFLE_ORDERS = ("torch", "tensorflow")


def transposed_conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                                output_padding: int = 0) -> int:
  """Output length of a transposed convolution along one axis: (n - 1) * s - 2p + k + output_padding.

  Args:
    size: input length n.
    kernel: kernel length k.
    stride: stride s.
    padding: pixels p cropped from each side of the full output.
    output_padding: extra pixels at the end (PyTorch's `output_padding`, < stride).

  Returns:
    the output length.
  """
  return (size - 1) * stride - 2 * padding + kernel + output_padding


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
  if isinstance(value, int):
    return value, value
  first, second = value
  return int(first), int(second)


def transposed_conv(x: jax.Array, kernel: jax.Array, stride: int | Sequence[int] = 1,
                    padding: int | Sequence[int] = 0, output_padding: int | Sequence[int] = 0) -> jax.Array:
  """Transposed convolution in the scatter form (PyTorch `conv_transpose2d` numbers), NHWC.

  Args:
    x: [N, H, W, C_in].
    kernel: [kh, kw, C_in, C_out], scatter orientation (not flipped).
    stride: int or (sh, sw).
    padding: int or (ph, pw) cropped from both sides of each axis.
    output_padding: int or (oh, ow) extra pixels at the bottom/right, each smaller than its stride.

  Returns:
    [N, H', W', C_out] with H' = (H - 1) * sh - 2 ph + kh + oh (and likewise W').
  """
  strides, pads, extras = _pair(stride), _pair(padding), _pair(output_padding)
  kernel_hw = kernel.shape[:2]
  if any(e >= s and e > 0 for e, s in zip(extras, strides)):
    raise ConfigError(f"output_padding {extras} must be smaller than the stride {strides}; lower output_padding")
  if tuple(kernel_hw) == strides and pads == (0, 0) and extras == (0, 0):
    return _non_overlapping_transposed_conv(x, kernel)
  # Dilating the input by the stride and correlating with the flipped kernel, padded k - 1 - p on each side
  # (plus output_padding at the end), equals scattering the kernel; negative padding crops.
  lax_padding = [(k - 1 - p, k - 1 - p + e) for k, p, e in zip(kernel_hw, pads, extras)]
  flipped = kernel[::-1, ::-1]
  return jax.lax.conv_general_dilated(x, flipped.astype(x.dtype), window_strides=(1, 1), padding=lax_padding,
                                      lhs_dilation=strides, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def bilinear_kernel(factor: int, channels: int) -> np.ndarray:
  """FCN's bilinear-upsampling kernel (Long et al., 2015; the `upsample_filt` formula), channel-wise.

  With kernel size k = 2 * factor - factor % 2, stride `factor` and padding factor // 2, a transposed conv with
  this kernel maps an n-pixel axis to n * factor pixels, each channel to its half-pixel bilinear upsampling away
  from the borders (which see fewer inputs, so they are darker).

  Args:
    factor: upsampling factor (the transposed conv's stride).
    channels: C; channel c maps only to channel c.

  Returns:
    [k, k, C, C] float32 kernel in `transposed_conv`'s orientation.
  """
  size = 2 * factor - factor % 2
  center = factor - 1 if size % 2 == 1 else factor - 0.5
  grid = np.arange(size, dtype=np.float64)
  taps = 1.0 - np.abs(grid - center) / factor
  filt = np.outer(taps, taps)
  weights = np.zeros((size, size, channels, channels), np.float32)
  weights[:, :, np.arange(channels), np.arange(channels)] = filt[:, :, None]
  return weights


def bilinear_init(factor: int) -> Callable:
  """A Flax initializer returning `bilinear_kernel(factor, C)` for a [k, k, C, C] shape (C_in must equal C_out)."""

  def init(key, shape, dtype=jnp.float32):
    del key
    size = 2 * factor - factor % 2
    if tuple(shape[:2]) != (size, size) or shape[2] != shape[3]:
      raise ConfigError(f"bilinear init for factor {factor} needs a [{size}, {size}, C, C] kernel, got "
                        f"{list(shape)}; use kernel_size={size} and as many output as input channels")
    return jnp.asarray(bilinear_kernel(factor, shape[2]), dtype)

  return init


def _non_overlapping_transposed_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The kernel == stride case (U-Net's 2x2/2 up-convolution): every input pixel writes its own s x s block, so
  the op is one matrix product [N*H*W, C_in] x [C_in, sh*sw*C_out] and a depth-to-space. Equal to the dilated
  form, and several times faster on XLA:CPU, whose input-dilated convolutions (and their gradients) miss the
  fast convolution path."""
  n, h, w, _ = x.shape
  sh, sw, _, c_out = kernel.shape
  y = jnp.einsum("nhwc,ijco->nhiwjo", x, kernel.astype(x.dtype))
  return y.reshape(n, h * sh, w * sw, c_out)


class TransposedConv(nn.Module):
  """Transposed convolution with the lecture's / PyTorch's arithmetic (see the module docstring).

  Attributes:
    features: output channels.
    kernel_size: int or (kh, kw).
    strides: int or (sh, sw).
    padding: int or (ph, pw), cropped from both sides.
    output_padding: int or (oh, ow), added at the bottom/right.
    use_bias: add a learned bias.
    kernel_init: initializer of the [kh, kw, C_in, C_out] kernel (e.g. `bilinear_init(factor)` for FCN).
    bias_init: initializer of the bias.
  """

  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] = 1
  padding: int | Sequence[int] = 0
  output_padding: int | Sequence[int] = 0
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Args: x: [N, H, W, C_in]. Returns: [N, H', W', features]."""
    kh, kw = _pair(self.kernel_size)
    kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features), jnp.float32)
    y = transposed_conv(x, kernel, self.strides, self.padding, self.output_padding)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), jnp.float32).astype(y.dtype)
    return y


def resize(x: jax.Array, scale: int | Sequence[int], method: str = "nearest") -> jax.Array:
  """Upsamples [N, H, W, C] by integer factors with half-pixel centres (PyTorch `align_corners=False`).

  Args:
    x: [N, H, W, C].
    scale: int or (sh, sw).
    method: "nearest" (pixel repetition) or "bilinear" (edges clamped).

  Returns:
    [N, H * sh, W * sw, C].
  """
  if method not in RESIZE_METHODS:
    raise ConfigError(f"unknown resize method {method!r}; use one of {', '.join(RESIZE_METHODS)}")
  sh, sw = _pair(scale)
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, h * sh, w * sw, c), method=method, antialias=False)


class ResizeConv(nn.Module):
  """Resize then convolve (Odena et al., 2016): upsampling without the checkerboard of strided transposed convs.

  Attributes:
    features: output channels.
    scale: integer upsampling factor, int or (sh, sw).
    method: "nearest" or "bilinear".
    kernel_size: the convolution's kernel, int or (kh, kw); "SAME" padding keeps the upsampled size.
    use_bias: add a learned bias.
  """

  features: int
  scale: int | Sequence[int] = 2
  method: str = "nearest"
  kernel_size: int | Sequence[int] = 3
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Args: x: [N, H, W, C]. Returns: [N, H * sh, W * sw, features]."""
    return nn.Conv(self.features, _pair(self.kernel_size), padding="SAME", use_bias=self.use_bias)(
        resize(x, self.scale, self.method))


def pixel_shuffle(x: jax.Array, factor: int, order: str = "torch") -> jax.Array:
  """Depth-to-space (Shi et al., 2016): [N, H, W, C * r * r] -> [N, H * r, W * r, C].

  Orders of the r * r sub-pixels within the channels differ between frameworks:
    * "torch" (`nn.PixelShuffle`, channels-first): out[n, h*r + i, w*r + j, c] = x[n, h, w, c*r*r + i*r + j].
    * "tensorflow" (`tf.nn.depth_to_space`, NHWC "DCR"): out[n, h*r + i, w*r + j, c] = x[n, h, w, (i*r + j)*C + c].
  Weights imported from one framework need its order.

  Args:
    x: [N, H, W, C * r * r].
    factor: r.
    order: "torch" or "tensorflow".

  Returns:
    [N, H * r, W * r, C].
  """
  if order not in PIXEL_SHUFFLE_ORDERS:
    raise ConfigError(f"unknown pixel shuffle order {order!r}; use one of {', '.join(PIXEL_SHUFFLE_ORDERS)}")
  n, h, w, depth = x.shape
  r = factor
  if depth % (r * r):
    raise ConfigError(f"pixel shuffle by {r} needs channels divisible by {r * r}, got {depth}; change the "
                      "preceding conv's width")
  c = depth // (r * r)
  if order == "torch":
    y = x.reshape(n, h, w, c, r, r).transpose(0, 1, 4, 2, 5, 3)  # n, h, i, w, j, c
  else:
    y = x.reshape(n, h, w, r, r, c).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, h * r, w * r, c)
