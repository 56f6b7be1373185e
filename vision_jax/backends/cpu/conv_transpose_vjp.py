"""A strided transposed convolution whose weight gradient XLA:CPU computes quickly.

`lax.conv_transpose` (and so `flax.linen.ConvTranspose`) is a convolution of the input dilated with s - 1 zeros
between pixels. XLA:CPU's weight gradient of that convolution ran 16-30x slower than its forward pass on a 2-core
x86: 31 ms for a DCGAN generator layer ([64, 7, 7, 64] -> [64, 14, 14, 32], 4x4, stride 2) whose forward takes
1.9 ms, 71 ms for [16, 16, 16, 64] -> [16, 32, 32, 32]. A transposed convolution is the adjoint, in its input, of
an ordinary strided convolution of the output with the flipped kernel (its "dual"), so both of its gradients are
ordinary strided-convolution computations: the input gradient is the dual's forward pass, the weight gradient the
dual's weight gradient taken at the layer's input. Those run at Eigen's usual speed (3.7 ms instead of 74 ms for
the second layer above, forward and backward together).
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax

_DIMS = ("NHWC", "HWIO", "NHWC")


@functools.lru_cache(maxsize=None)
def _lax_padding(x_shape: tuple[int, ...], w_shape: tuple[int, ...], strides: tuple[int, int],
                 padding: Union[str, tuple[tuple[int, int], ...]]) -> Optional[tuple[tuple[int, int], ...]]:
  """The explicit padding of the dilated input that `lax.conv_transpose` uses for `padding` (read from its
  jaxpr, so that "SAME" and "VALID" follow whatever rule this jax version has); None if that jaxpr is not the one
  plain input-dilated convolution this module reproduces."""
  jaxpr = jax.make_jaxpr(lambda a, b: lax.conv_transpose(a, b, strides, padding, dimension_numbers=_DIMS))(
      jax.ShapeDtypeStruct(x_shape, jnp.float32), jax.ShapeDtypeStruct(w_shape, jnp.float32))
  convs = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
  if (len(convs) != 1 or len(jaxpr.eqns) != 1 or tuple(convs[0].params["lhs_dilation"]) != strides
      or tuple(convs[0].params["rhs_dilation"]) != (1, 1) or tuple(convs[0].params["window_strides"]) != (1, 1)):
    return None
  return tuple((int(lo), int(hi)) for lo, hi in convs[0].params["padding"])


def dual_padding(kernel: Sequence[int], padding: Sequence[tuple[int, int]]) -> Optional[tuple[tuple[int, int], ...]]:
  """Padding of the dual strided convolution, (k - 1 - lo, k - 1 - hi) per axis; None if any is negative.

  Args:
    kernel: (kh, kw).
    padding: the transposed convolution's explicit padding of its dilated input, ((top, bottom), (left, right)).
  """
  dual = tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(kernel, padding))
  return None if any(p < 0 for pair in dual for p in pair) else dual


def conv_transpose_padding(x_shape: Sequence[int], w_shape: Sequence[int], strides: Sequence[int],
                           padding: Union[str, Sequence[tuple[int, int]]]) -> Optional[tuple[tuple[int, int], ...]]:
  """Explicit padding for `conv_transpose2d` equivalent to `lax.conv_transpose(..., padding)`, or None when the
  dual convolution would need negative padding or this jax lowers `lax.conv_transpose` otherwise (then use it).

  Args:
    x_shape: input [N, H, W, C].
    w_shape: kernel [kh, kw, C, O] (not transposed).
    strides: (sh, sw).
    padding: "SAME", "VALID" or ((top, bottom), (left, right)) as `lax.conv_transpose` takes it.
  """
  key = padding if isinstance(padding, str) else tuple((int(lo), int(hi)) for lo, hi in padding)
  explicit = _lax_padding(tuple(x_shape), tuple(w_shape), tuple(int(s) for s in strides), key)
  return explicit if explicit is not None and dual_padding(w_shape[:2], explicit) is not None else None


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_transpose2d(x: jax.Array, w: jax.Array, strides: tuple[int, int],
                     padding: tuple[tuple[int, int], ...]) -> jax.Array:
  """`lax.conv_transpose(x, w, strides, padding)` (NHWC x HWIO, no kernel dilation or transposition) with both
  gradients computed through the dual strided convolution.

  Args:
    x: input [N, H, W, C].
    w: kernel [kh, kw, C, O].
    strides: (sh, sw), the dilation of the input.
    padding: explicit padding of the dilated input (`conv_transpose_padding`); each side at most k - 1.

  Returns:
    [N, (H - 1) * sh + 1 + top + bottom - kh + 1, ..., O], XLA's own forward pass; the gradients equal
    `lax.conv_transpose`'s up to float rounding.
  """
  return lax.conv_general_dilated(x, w, (1, 1), padding, lhs_dilation=strides, dimension_numbers=_DIMS)


def _conv_transpose_fwd(x, w, strides, padding):
  return conv_transpose2d(x, w, strides, padding), (x, w)


def _conv_transpose_bwd(strides, padding, residuals, dy):
  """y = C^T x for the strided convolution C(u) = conv(u, w_dual, strides, dual padding), w_dual the kernel
  flipped in space with its channel axes swapped: dx = C(dy), and dw_dual = the weight gradient of C(dy) at x."""
  x, w = residuals
  dual_pads = dual_padding(w.shape[:2], padding)
  dual = lambda kernel: lax.conv_general_dilated(dy, kernel, strides, dual_pads, dimension_numbers=_DIMS)
  w_dual = jnp.swapaxes(w[::-1, ::-1], 2, 3)  # [kh, kw, O, C]
  dx, dual_vjp = jax.vjp(dual, w_dual)
  dw = jnp.swapaxes(dual_vjp(x.astype(dx.dtype))[0], 2, 3)[::-1, ::-1]
  return dx.astype(x.dtype), dw.astype(w.dtype)


conv_transpose2d.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)
