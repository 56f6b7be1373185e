"""Max pooling as a maximum over strided slices, whose gradient is cheap on every backend.

`flax.linen.max_pool` is one `reduce_window`; its gradient is a select-and-scatter that XLA:CPU runs through
index arrays and scatters, 8-12x slower than the forward pass (a LeNet-5 train step spent more time in it than
in its convolutions). Written as `maximum` over the k*k shifted, strided views of the input, the same forward
result has an elementwise gradient that fuses. Non-overlapping windows (window == stride, as in LeNet-5, VGG and
most 2x2 pools) take a cheaper form still: a `max` over the window axes of a reshaped input, whose gradient is
one broadcast comparison (LeNet-5's first pool, [256, 28, 28, 6]: 2.3 -> 1.0 ms backward on a 2-core x86).
Where several inputs tie for the maximum the gradient is split among them (still a valid subgradient;
`reduce_window` gives it all to one).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp


def max_pool_2d(x: jax.Array, window: Sequence[int], strides: Sequence[int],
                pads: Sequence[tuple[int, int]]) -> jax.Array:
  """Max pooling of [N, H, W, C] with explicit (lo, hi) padding per spatial axis (padded cells are -inf).

  Args:
    x: [N, H, W, C].
    window: (kh, kw).
    strides: (sh, sw).
    pads: ((top, bottom), (left, right)).

  Returns:
    [N, H', W', C] with H' = (H + top + bottom - kh) // sh + 1 (same for W').
  """
  (kh, kw), (sh, sw) = window, strides
  x = jnp.asarray(x)
  if any(lo or hi for lo, hi in pads):
    fill = jnp.array(-jnp.inf, x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    x = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)), constant_values=fill)
  n, h, w, c = x.shape
  out_h, out_w = (h - kh) // sh + 1, (w - kw) // sw + 1
  if out_h < 1 or out_w < 1:
    raise ValueError(f"max pooling window {kh}x{kw} is larger than the padded input {h}x{w}")
  if (kh, kw) == (sh, sw):
    cropped = x[:, :out_h * kh, :out_w * kw]  # the floor rule drops the last partial window
    return jnp.max(cropped.reshape(n, out_h, kh, out_w, kw, c), axis=(2, 4))
  result = None
  for i in range(kh):
    for j in range(kw):
      view = jax.lax.slice(x, (0, i, j, 0), (n, i + (out_h - 1) * sh + 1, j + (out_w - 1) * sw + 1, c),
                           (1, sh, sw, 1))
      result = view if result is None else jnp.maximum(result, view)
  return result


def same_pads(size: Sequence[int], window: Sequence[int], strides: Sequence[int]) -> list[tuple[int, int]]:
  """TensorFlow "SAME" padding (extra cell at the end) for each spatial axis."""
  return [tuple(p) for p in jax.lax.padtype_to_pads(tuple(size), tuple(window), tuple(strides), "SAME")]
