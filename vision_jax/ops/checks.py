"""Input checks shared by the box ops: shapes always, values only when the arrays are concrete.

Under `jax.jit` or `jax.vmap` the values are tracers and cannot be inspected, so the value checks run only
on concrete arrays (eager calls); shape checks run in both cases.
"""

from typing import Any

import jax
import numpy as np

from vision_jax.errors import UserError


def is_concrete(x: Any) -> bool:
  """True when `x` holds values that can be read on the host (not a tracer)."""
  return not isinstance(x, jax.core.Tracer)


def check_boxes(boxes: Any, name: str = 'boxes', ndim: int | None = None) -> None:
  """Raises `UserError` unless `boxes` has a last axis of 4 (and `ndim` axes when given)."""
  shape = np.shape(boxes)
  if not shape or shape[-1] != 4:
    raise UserError(f'{name} must have shape [..., 4] (x1, y1, x2, y2); got shape {tuple(shape)}: '
                    'reshape or convert your boxes to a last axis of 4.')
  if ndim is not None and len(shape) != ndim:
    want = '[N, 4]' if ndim == 2 else f'{ndim} axes ending in 4'
    raise UserError(f'{name} must have shape {want}; got shape {tuple(shape)}: '
                    'pass one set of boxes (use jax.vmap for a batch).')


def check_xyxy_valid(boxes: Any, name: str = 'boxes') -> None:
  """Raises `UserError` if concrete `boxes` have x2 < x1 or y2 < y1 (checked only outside jit)."""
  if not is_concrete(boxes):
    return
  b = np.asarray(boxes)
  if b.size and (np.any(b[..., 2] < b[..., 0]) or np.any(b[..., 3] < b[..., 1])):
    raise UserError(f'{name} has boxes with x2 < x1 or y2 < y1: pass xyxy boxes (convert xywh/cxcywh '
                    'with vision_jax.ops.convert_boxes) with the corners in order.')


def check_same_leading(a: Any, b: Any, name_a: str, name_b: str) -> None:
  """Raises `UserError` unless `a` and `b` have the same first dimension."""
  if np.shape(a)[:1] != np.shape(b)[:1]:
    raise UserError(f'{name_a} and {name_b} must have the same length; got shapes {np.shape(a)} and '
                    f'{np.shape(b)}: pass one {name_b} entry per {name_a} entry.')
