"""Non-maximum suppression: `nms`, `batched_nms` (per class) and Soft-NMS, with static output shapes.

Greedy NMS keeps the highest-scoring box, drops every later box whose IoU with it is > `iou_threshold`, and
repeats (the rule of `torchvision.ops.nms`: ties in score keep their input order). The outputs are padded
to `max_output_size` with -1 and come with the number of valid entries, so every function is jit-able and
vmap-able over a batch.

The jnp reference works on tiles of the score-sorted boxes: a tile is first suppressed by the boxes already
kept in earlier tiles, then resolved inside itself by iterating "alive = not suppressed by an alive earlier
box" to its fixed point (exact: entry t is final after t iterations, and the greedy result is the only fixed
point). A loop over tiles stops once `max_output_size` boxes are kept. The Pallas kernel in
`pallas/nms_kernel.py` runs the same algorithm on chip.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import UserError
from vision_jax.ops import checks
from vision_jax.ops import dispatch

_TILE = 256


def iou_threshold_f32(iou_threshold: float) -> float:
  """The float32 t with `iou_f32 > t` <=> `iou_f32 > iou_threshold` (as torchvision compares in double)."""
  if isinstance(iou_threshold, jax.core.Tracer):
    return iou_threshold
  t = np.float32(iou_threshold)
  if float(t) > float(iou_threshold):
    t = np.nextafter(t, np.float32(-np.inf))
  return float(t)


def tile_iou(rows: jax.Array, cols: jax.Array) -> jax.Array:
  """IoU `[T, U]` of `rows [T, 4]` and `cols [U, 4]` in torchvision's float operation order."""
  area_r = (rows[:, 2] - rows[:, 0]) * (rows[:, 3] - rows[:, 1])
  area_c = (cols[:, 2] - cols[:, 0]) * (cols[:, 3] - cols[:, 1])
  w = jnp.maximum(jnp.minimum(rows[:, None, 2], cols[None, :, 2]) -
                  jnp.maximum(rows[:, None, 0], cols[None, :, 0]), 0)
  h = jnp.maximum(jnp.minimum(rows[:, None, 3], cols[None, :, 3]) -
                  jnp.maximum(rows[:, None, 1], cols[None, :, 1]), 0)
  inter = w * h
  return inter / (area_c[None, :] + area_r[:, None] - inter)


def _check_inputs(boxes, scores, classes=None):
  checks.check_boxes(boxes, ndim=2)
  if jnp.ndim(scores) != 1:
    raise UserError(f'scores must have shape [N]; got {jnp.shape(scores)}: pass one score per box '
                    '(use jax.vmap for a batch).')
  checks.check_same_leading(boxes, scores, 'boxes', 'scores')
  if classes is not None:
    if jnp.ndim(classes) != 1:
      raise UserError(f'classes must have shape [N]; got {jnp.shape(classes)}: pass one class id per box.')
    checks.check_same_leading(boxes, classes, 'boxes', 'classes')


def sort_for_nms(boxes: jax.Array, scores: jax.Array, score_threshold: float,
                 classes: jax.Array | None = None):
  """Stable descending score order and the sorted boxes, classes and validity (score >= threshold)."""
  order = jnp.argsort(scores, descending=True, stable=True)
  s = scores[order]
  valid = (s >= score_threshold) & ~jnp.isnan(s)
  cls = jnp.zeros(scores.shape, jnp.int32) if classes is None else jnp.asarray(classes, jnp.int32)[order]
  return order, boxes[order].astype(jnp.float32), cls, valid


def nms_keep_reference(boxes: jax.Array, classes: jax.Array, valid: jax.Array, iou_threshold: float,
                       max_output_size: int, tile: int = _TILE) -> jax.Array:
  """Greedy NMS on score-sorted boxes: `[N, 4]`, `[N]`, `[N]` -> keep mask `[N]` (tiled jnp reference).

  Only boxes of the same class suppress each other. Tiles after the one in which `max_output_size` boxes
  have been kept, and tiles after the last valid box, are not processed (their keep entries are False).
  """
  n = boxes.shape[0]
  tile = min(tile, max(8, int(next_pow2(n))))
  nb = -(-n // tile)
  pad = nb * tile - n
  b = jnp.pad(boxes, ((0, pad), (0, 0))).reshape(nb, tile, 4)
  c = jnp.pad(classes, (0, pad)).reshape(nb, tile)
  v = jnp.pad(valid, (0, pad)).reshape(nb, tile)
  thr = iou_threshold_f32(iou_threshold)
  earlier = jnp.arange(tile)[None, :] < jnp.arange(tile)[:, None]  # [r, c]: c comes before r

  def suppressors(k, j):
    return (tile_iou(b[k], b[j]) > thr) & (c[k][:, None] == c[j][None, :])

  def do_tile(state):
    k, keep, count = state

    def cross(j, alive):
      return alive & ~jnp.any(suppressors(k, j) & keep[j][None, :], axis=1)

    alive0 = jax.lax.fori_loop(0, k, cross, v[k])
    m = suppressors(k, k) & earlier

    def fix_body(s):
      _, cur = s
      return cur, alive0 & ~jnp.any(m & cur[None, :], axis=1)

    _, alive = jax.lax.while_loop(lambda s: jnp.any(s[0] != s[1]), fix_body, (~alive0, alive0))
    return k + 1, keep.at[k].set(alive), count + jnp.sum(alive, dtype=jnp.int32)  # int32 under x64 too

  # Tiles after the last one holding a valid box keep nothing: stop there (few boxes pass a score threshold, and
  # the loop would otherwise scan every tile of e.g. 90,000 candidates, as the max_output_size exit never fires).
  used = jnp.max(jnp.where(jnp.any(v, axis=1), jnp.arange(1, nb + 1, dtype=jnp.int32), 0))
  init = (jnp.int32(0), jnp.zeros((nb, tile), bool), jnp.int32(0))
  _, keep, _ = jax.lax.while_loop(lambda s: (s[0] < used) & (s[2] < max_output_size), do_tile, init)
  return keep.reshape(-1)[:n]


def next_pow2(n: int) -> int:
  """Smallest power of two >= n (>= 1)."""
  return 1 << max(0, (int(n) - 1).bit_length())


def _nms_impl(boxes, scores, classes, iou_threshold, max_output_size, score_threshold, implementation):
  n = boxes.shape[0]
  if n == 0:
    return jnp.full((max_output_size,), -1, jnp.int32), jnp.int32(0)
  order, sboxes, scls, valid = sort_for_nms(boxes, scores, score_threshold, classes)
  use_pallas, interpret = dispatch.resolve_implementation(implementation)
  if use_pallas and not isinstance(iou_threshold, jax.core.Tracer):
    from vision_jax.ops.pallas import nms_kernel  # pylint: disable=g-import-not-at-top
    keep = nms_kernel.nms_keep_pallas(sboxes, scls, valid, iou_threshold_f32(iou_threshold),
                                      max_output_size, interpret=interpret)
  else:
    keep = nms_keep_reference(sboxes, scls, valid, iou_threshold, max_output_size)
  (pos,) = jnp.nonzero(keep, size=max_output_size, fill_value=n)
  indices = jnp.where(pos < n, order[jnp.minimum(pos, n - 1)], -1).astype(jnp.int32)
  return indices, jnp.minimum(jnp.sum(keep), max_output_size).astype(jnp.int32)


_nms_jit = jax.jit(_nms_impl, static_argnames=('iou_threshold', 'max_output_size', 'implementation'))


def nms(boxes: jax.Array, scores: jax.Array, iou_threshold: float, max_output_size: int,
        score_threshold: float = -float('inf'),
        implementation: str = 'auto') -> tuple[jax.Array, jax.Array]:
  """Greedy non-maximum suppression with torchvision's rule (suppress when IoU > `iou_threshold`).

  Args:
    boxes: `[N, 4]` xyxy boxes.
    scores: `[N]` scores; boxes with score < `score_threshold` (or NaN) are dropped first.
    iou_threshold: IoU above which a lower-scoring box is suppressed (a Python float for exact parity).
    max_output_size: static length of the output.
    score_threshold: minimum score to keep.
    implementation: 'auto' (Pallas kernel on GPU/TPU, jnp reference elsewhere), 'reference' or 'pallas'
      (interpret mode on CPU, for tests).

  Returns:
    `indices [max_output_size]` int32 of the kept boxes by decreasing score, padded with -1, and
    `num_valid` int32 scalar.

  Example:
    >>> boxes = jnp.array([[0., 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
    >>> nms(boxes, jnp.array([0.9, 0.8, 0.7]), iou_threshold=0.5, max_output_size=3)
    (Array([ 0,  2, -1], dtype=int32), Array(2, dtype=int32))
  """
  _check_inputs(boxes, scores)
  return _nms_call(boxes, scores, None, iou_threshold, max_output_size, score_threshold, implementation)


def _nms_call(boxes, scores, classes, iou_threshold, max_output_size, score_threshold, implementation):
  if int(max_output_size) < 1:
    raise UserError(f'max_output_size must be >= 1; got {max_output_size}: pass a positive static int.')
  args = (jnp.asarray(boxes, jnp.float32), jnp.asarray(scores), classes)
  if isinstance(iou_threshold, jax.core.Tracer):
    return _nms_impl(*args, iou_threshold, int(max_output_size), score_threshold, implementation)
  # A Python threshold stays static so that its float32 rounding matches torchvision's double compare.
  return _nms_jit(*args, float(iou_threshold), int(max_output_size), score_threshold, implementation)


def batched_nms(boxes: jax.Array, scores: jax.Array, classes: jax.Array, iou_threshold: float,
                max_output_size: int, score_threshold: float = -float('inf'),
                implementation: str = 'auto') -> tuple[jax.Array, jax.Array]:
  """NMS done independently per class (boxes of different classes never suppress each other).

  Args:
    boxes: `[N, 4]` xyxy boxes.
    scores: `[N]` scores.
    classes: `[N]` integer class ids.
    iou_threshold: IoU above which a lower-scoring box of the same class is suppressed.
    max_output_size: static length of the output.
    score_threshold: minimum score to keep.
    implementation: 'auto', 'reference' or 'pallas' (see `nms`).

  Returns:
    `indices [max_output_size]` int32 by decreasing score (all classes merged), padded with -1, and
    `num_valid`.
  """
  _check_inputs(boxes, scores, classes)
  return _nms_call(boxes, scores, jnp.asarray(classes), iou_threshold, max_output_size, score_threshold,
                   implementation)


@functools.partial(jax.jit, static_argnames=('max_output_size', 'method'))
def _soft_nms(boxes, scores, sigma, iou_threshold, score_threshold, max_output_size, method):
  n = boxes.shape[0]

  def step(i, state):
    cur, idx, out_scores = state
    best = jnp.argmax(cur)
    best_score = cur[best]
    ok = best_score >= score_threshold
    iou = tile_iou(boxes[best][None, :], boxes)[0]
    if method == 'linear':
      decay = jnp.where(iou > iou_threshold, 1.0 - iou, 1.0)
    else:
      decay = jnp.exp(-(iou * iou) / sigma)
    new = jnp.where(ok, cur * decay, cur).at[best].set(jnp.where(ok, -jnp.inf, cur[best]))
    idx = idx.at[i].set(jnp.where(ok, best, -1).astype(jnp.int32))
    out_scores = out_scores.at[i].set(jnp.where(ok, best_score, 0.0))
    return new, idx, out_scores

  cur = jnp.where(jnp.isnan(scores), -jnp.inf, scores.astype(jnp.float32))
  init = (cur, jnp.full((max_output_size,), -1, jnp.int32), jnp.zeros((max_output_size,), jnp.float32))
  _, idx, out_scores = jax.lax.fori_loop(0, min(max_output_size, n), step, init)
  return idx, out_scores, jnp.sum(idx >= 0).astype(jnp.int32)


def soft_nms(boxes: jax.Array, scores: jax.Array, max_output_size: int, method: str = 'gaussian',
             sigma: float = 0.5, iou_threshold: float = 0.3,
             score_threshold: float = 0.001) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Soft-NMS (Bodla et al., 2017): decay the scores of overlapping boxes instead of removing them.

  Repeatedly takes the box of highest current score (first index on ties), then rescales every remaining
  score by exp(-IoU^2 / sigma) ('gaussian') or by (1 - IoU) where IoU > `iou_threshold` ('linear'); stops
  when the best remaining score is below `score_threshold`.

  Args:
    boxes: `[N, 4]` xyxy boxes.
    scores: `[N]` scores.
    max_output_size: static length of the output.
    method: 'gaussian' or 'linear'.
    sigma: Gaussian width.
    iou_threshold: overlap above which the linear decay applies.
    score_threshold: selection stops below this rescored score.

  Returns:
    `indices [max_output_size]` int32 in selection order padded with -1, their rescored
    `scores [max_output_size]` (0 in the padding), and `num_valid`.
  """
  _check_inputs(boxes, scores)
  if method not in ('gaussian', 'linear'):
    raise UserError(f'unknown soft_nms method {method!r}: use "gaussian" or "linear".')
  return _soft_nms(jnp.asarray(boxes, jnp.float32), jnp.asarray(scores), sigma, iou_threshold,
                   score_threshold, int(max_output_size), method)
