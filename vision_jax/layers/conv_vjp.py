"""Two forms of a 2-D convolution that XLA:CPU runs faster than its own in train steps (see README, "Speed").

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
  dx = None if x.shape[-1] < MIN_PHASE_CHANNELS else _phase_input_grad(dy, w, x.shape, strides, padding)
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


def conv2d(x: jax.Array, w: jax.Array, strides: Sequence[int], padding: Sequence[tuple[int, int]]) -> jax.Array:
  """`lax.conv_general_dilated` (NHWC x HWIO, no dilation, one group) with a phase-decomposed input gradient.

  Args:
    x: input [N, H, W, C].
    w: kernel [kh, kw, C, O].
    strides: (sh, sw).
    padding: explicit ((top, bottom), (left, right)) zeros.

  Returns:
    The convolution [N, Ho, Wo, O]; identical to `lax.conv_general_dilated` in value and gradient.
  """
  strides = tuple(int(s) for s in strides)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  if strides == (1, 1):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_DIMS)
  return _strided_conv(x, w, strides, padding)
