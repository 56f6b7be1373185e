"""Forms of a 2-D convolution that XLA:CPU runs faster than its own in train steps (see README, "Speed").

`few_channel_conv2d`, for inputs of very few channels (a grayscale first layer), computes the forward pass as a
sum of kh * kw * C shifted broadcast products, which XLA fuses into one loop: LeNet-5's 5x5 conv of 28x28x1
digits to 6 channels, batch 256, takes 0.74 ms this way against 9.8 ms as a convolution (Eigen's kernels are
built for many channels). Its gradients are XLA's own.

`conv2d`, for strided layers, keeps XLA's forward pass and replaces the input gradient:

The input gradient of a stride-s convolution is a transposed convolution. XLA lowers it to a convolution over
the output gradient dilated with s - 1 zeros between pixels, and on CPU that runs as a dense convolution
over the zeros: for a stride-2 3x3 layer, 3/4 of its multiply-adds are wasted (measured at 51 GFLOP/s of
useful work against ~150 for an ordinary convolution; see README, "Speed").

`conv2d` computes the same gradient by phase decomposition (the "sub-pixel" view of a transposed
convolution, Shi et al., "Is the deconvolution layer the same as a convolutional layer?", 2016): the input
pixels i with the same (i + pad) mod s receive contributions from one sub-kernel w[r::s] only, so each of the
s x s phases is a stride-1 convolution of the undilated output gradient, and the phases interleave into the
result: 98 -> 48 ms for [128, 32, 32, 64] -> 128 channels, 3x3, stride 2, on a 2-core x86. The forward pass
and the weight gradient are XLA's own.

For stride-1 layers of few input channels on small maps, Eigen's input gradient is slow too (LeNet-5's
second layer, 6 -> 16 channels, 5x5, 14x14 maps, batch 256: 6.2 ms for 123 MFLOP). `conv2d` then computes it
as one matrix product dy @ w^T into per-tap patches [N, Ho, Wo, kh, kw, C] and an overlap-add of the taps
(col2im): 2.8-4.9 ms. On 32x32 maps with 8 or more channels the overlap-add lost (10.7 -> 18.2 ms), hence
`MAX_PATCH_PIXELS`.

`full_window_conv2d` is a convolution whose kernel covers its whole (padded) input, such as LeNet-5's C5 (5x5
kernel on 5x5 maps): a dense layer in disguise, and XLA's convolution gradient for it took 5.2 ms where the
matrix products take 0.6 ms.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
from jax import lax

_DIMS = ("NHWC", "HWIO", "NHWC")


def _phase_plan(size: int, kernel: int, stride: int, pad_lo: int, out_size: int):
  """Per phase, sorted by the first input index it fills: (first index, r, taps in w[r::stride], dy pad lo,
  dy pad hi) along one spatial axis.

  Returns None when the axis does not split into equal interleaved phases (then the default gradient is used).
  """
  if size % stride:
    return None
  per_phase = size // stride
  plan = []
  for r in range(stride):
    taps = len(range(r, kernel, stride))
    # Input index i = stride * q + r - pad_lo for the q of this phase; q_min is the first q with i >= 0.
    q_min = -((r - pad_lo) // stride)
    first = stride * q_min + r - pad_lo
    # dx[q] = sum_t dy[q - t] w[r + stride t]: a VALID correlation of dy padded by (taps - 1 - q_min) on the low
    # side with the sub-kernel reversed, over per_phase outputs.
    lo = taps - 1 - q_min
    hi = per_phase + taps - 1 - lo - out_size
    plan.append((first, r, taps, lo, hi))  # the firsts are a permutation of 0..stride-1
  return sorted(plan)


def _phase_input_grad(dy: jax.Array, w: jax.Array, x_shape: Sequence[int], strides: tuple[int, int],
                      padding: Sequence[tuple[int, int]]) -> Optional[jax.Array]:
  """Input gradient [N, H, W, C] of a strided convolution from dy [N, Ho, Wo, O] and w [kh, kw, C, O]."""
  plans = [_phase_plan(x_shape[1 + d], w.shape[d], strides[d], padding[d][0], dy.shape[1 + d]) for d in range(2)]
  if plans[0] is None or plans[1] is None:
    return None
  n, h, wd, c = x_shape
  rows = []
  for (_, r0, t0, lo0, hi0) in plans[0]:
    cols = []
    for (_, r1, t1, lo1, hi1) in plans[1]:
      if t0 == 0 or t1 == 0:
        cols.append(jnp.zeros((n, h // strides[0], wd // strides[1], c), dy.dtype))
        continue
      sub = w[r0::strides[0], r1::strides[1]][::-1, ::-1]  # [t0, t1, C, O], reversed taps
      dy_padded = lax.pad(dy, jnp.zeros((), dy.dtype), ((0, 0, 0), (lo0, hi0, 0), (lo1, hi1, 0), (0, 0, 0)))
      cols.append(lax.conv_general_dilated(dy_padded, jnp.swapaxes(sub, 2, 3), (1, 1), "VALID",
                                           dimension_numbers=_DIMS))
    rows.append(jnp.stack(cols, axis=3))  # [N, H/s0, W/s1, s1, C]
  phases = jnp.stack(rows, axis=2)  # [N, H/s0, s0, W/s1, s1, C]
  return phases.reshape(n, h, wd, c)


# Below this many input channels the phase form loses to XLA's own input gradient (measured: a 7x7 stem on
# 3 channels, 397 vs 297 ms).
MIN_PHASE_CHANNELS = 16


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _strided_conv(x: jax.Array, w: jax.Array, strides: tuple[int, int],
                  padding: tuple[tuple[int, int], ...]) -> jax.Array:
  return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_DIMS)


def _strided_conv_fwd(x, w, strides, padding):
  return _strided_conv(x, w, strides, padding), (x, w)


def _strided_conv_bwd(strides, padding, residuals, dy):
  x, w = residuals
  conv = lambda a, b: lax.conv_general_dilated(a, b, strides, padding, dimension_numbers=_DIMS)
  dx = _phase_input_grad(dy, w, x.shape, strides, padding)
  if dx is None:
    dx = jax.vjp(lambda a: conv(a, w), x)[1](dy)[0]
  dw = jax.vjp(lambda b: conv(x, b), w)[1](dy)[0]
  return dx.astype(x.dtype), dw


_strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def few_channel_conv2d(x: jax.Array, w: jax.Array, padding: tuple[tuple[int, int], ...]) -> jax.Array:
  """Stride-1 convolution (NHWC x HWIO, one group) as a sum of shifted products; for very few input channels.

  Args:
    x: input [N, H, W, C].
    w: kernel [kh, kw, C, O].
    padding: explicit ((top, bottom), (left, right)) zeros.

  Returns:
    [N, H + top + bottom - kh + 1, W + left + right - kw + 1, O], equal to `lax.conv_general_dilated` up to
    float rounding, with the same gradients.
  """
  kh, kw, channels, _ = w.shape
  x_padded = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
  ho, wo = x_padded.shape[1] - kh + 1, x_padded.shape[2] - kw + 1
  out = None
  for a in range(kh):
    for b in range(kw):
      for c in range(channels):
        term = x_padded[:, a:a + ho, b:b + wo, c:c + 1] * w[a, b, c]
        out = term if out is None else out + term
  return out


def _few_channel_fwd(x, w, padding):
  return few_channel_conv2d(x, w, padding), (x, w)


def _few_channel_bwd(padding, residuals, dy):
  x, w = residuals
  _, vjp = jax.vjp(lambda a, b: lax.conv_general_dilated(a, b, (1, 1), padding, dimension_numbers=_DIMS), x, w)
  return vjp(dy)


few_channel_conv2d.defvjp(_few_channel_fwd, _few_channel_bwd)


# Stride-1 input gradients as patches + overlap-add: for 2 <= channels < MIN_PHASE_CHANNELS and outputs of at
# most this many pixels (measured on 10x10 and 14x14 maps, lost on 32x32 ones).
MAX_PATCH_PIXELS = 256


def input_grad_form(x_shape: Sequence[int], w_shape: Sequence[int], strides: Sequence[int],
                    out_hw: Sequence[int]) -> Optional[str]:
  """Which input gradient `conv2d` uses: "phase", "patches", or None for XLA's own.

  Args:
    x_shape: input shape [N, H, W, C].
    w_shape: kernel shape [kh, kw, C, O].
    strides: (sh, sw).
    out_hw: output (Ho, Wo).
  """
  channels, kernel = x_shape[-1], tuple(w_shape[:2])
  if kernel == (1, 1):
    return None
  if tuple(strides) != (1, 1):
    return "phase" if channels >= MIN_PHASE_CHANNELS else None
  if 2 <= channels < MIN_PHASE_CHANNELS and out_hw[0] * out_hw[1] <= MAX_PATCH_PIXELS:
    return "patches"
  return None


def _overlap_add_input_grad(dy: jax.Array, w: jax.Array, padding: Sequence[tuple[int, int]]) -> jax.Array:
  """Input gradient [N, H, W, C] of a stride-1 convolution from dy [N, Ho, Wo, O] and w [kh, kw, C, O]."""
  kh, kw = w.shape[:2]
  patches = jnp.einsum("nhwo,abco->nhwabc", dy, w)  # the gradient of each tap's input view
  padded = None
  for a in range(kh):
    for b in range(kw):
      tap = lax.pad(patches[:, :, :, a, b, :], jnp.zeros((), dy.dtype),
                    ((0, 0, 0), (a, kh - 1 - a, 0), (b, kw - 1 - b, 0), (0, 0, 0)))
      padded = tap if padded is None else padded + tap
  (top, bottom), (left, right) = padding
  return padded[:, top:padded.shape[1] - bottom, left:padded.shape[2] - right, :]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _patch_grad_conv(x: jax.Array, w: jax.Array, padding: tuple[tuple[int, int], ...]) -> jax.Array:
  return lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=_DIMS)


def _patch_grad_conv_fwd(x, w, padding):
  return _patch_grad_conv(x, w, padding), (x, w)


def _patch_grad_conv_bwd(padding, residuals, dy):
  x, w = residuals
  dw = jax.vjp(lambda b: lax.conv_general_dilated(x, b, (1, 1), padding, dimension_numbers=_DIMS), w)[1](dy)[0]
  return _overlap_add_input_grad(dy, w, padding).astype(x.dtype), dw


_patch_grad_conv.defvjp(_patch_grad_conv_fwd, _patch_grad_conv_bwd)


def full_window_conv2d(x: jax.Array, w: jax.Array, padding: Sequence[tuple[int, int]]) -> jax.Array:
  """A convolution whose kernel covers its whole padded input, as one matrix product.

  Args:
    x: input [N, H, W, C] with H + top + bottom == kh and W + left + right == kw.
    w: kernel [kh, kw, C, O].
    padding: explicit ((top, bottom), (left, right)) zeros.

  Returns:
    [N, 1, 1, O], equal to `lax.conv_general_dilated` (any stride) up to float rounding.
  """
  (top, bottom), (left, right) = padding
  if (x.shape[1] + top + bottom, x.shape[2] + left + right) != tuple(w.shape[:2]):
    raise ValueError(f"full_window_conv2d needs the kernel {tuple(w.shape[:2])} to cover the padded input "
                     f"{x.shape[1] + top + bottom}x{x.shape[2] + left + right}")
  if top or bottom or left or right:
    x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
  y = x.reshape(x.shape[0], -1) @ w.reshape(-1, w.shape[-1])
  return y.reshape(x.shape[0], 1, 1, w.shape[-1])


def conv2d(x: jax.Array, w: jax.Array, strides: Sequence[int], padding: Sequence[tuple[int, int]]) -> jax.Array:
  """`lax.conv_general_dilated` (NHWC x HWIO, no dilation, one group) with a faster input gradient.

  The input gradient is phase-decomposed for strided layers and patches + overlap-add for stride-1 layers of
  few channels on small maps (`input_grad_form`); otherwise the convolution is XLA's own.

  Args:
    x: input [N, H, W, C].
    w: kernel [kh, kw, C, O].
    strides: (sh, sw).
    padding: explicit ((top, bottom), (left, right)) zeros.

  Returns:
    The convolution [N, Ho, Wo, O]; equal to `lax.conv_general_dilated` in value and gradient up to float
    rounding.
  """
  strides = tuple(int(s) for s in strides)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  out_hw = [(x.shape[1 + d] + sum(padding[d]) - w.shape[d]) // strides[d] + 1 for d in range(2)]
  form = input_grad_form(x.shape, w.shape, strides, out_hw)
  if form == "phase":
    return _strided_conv(x, w, strides, padding)
  if form == "patches":
    return _patch_grad_conv(x, w, padding)
  return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_DIMS)
