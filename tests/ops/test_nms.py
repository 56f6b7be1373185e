"""NMS, batched NMS and Soft-NMS against torchvision fixtures, a float64 NumPy reference and the lectures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import ops
from vision_jax.errors import UserError
from vision_jax.ops.nms import nms_keep_reference
from vision_jax.ops.nms import sort_for_nms
from vision_jax.ops.pallas import nms_kernel


def _valid(idx, n):
  idx, n = np.asarray(idx), int(n)
  assert np.all(idx[n:] == -1)
  return idx[:n]


@pytest.mark.parametrize('name', ['nms_small', 'nms'])
@pytest.mark.parametrize('thr', [0.3, 0.5, 0.7])
def test_nms_matches_torchvision(tv, name, thr):
  boxes, scores, want = tv[f'{name}_boxes'], tv[f'{name}_scores'], tv[f'{name}_keep_{thr}']
  idx, n = ops.nms(boxes, scores, thr, len(boxes), implementation='reference')
  np.testing.assert_array_equal(_valid(idx, n), want)
  # A shorter output keeps the first max_output_size of the same list.
  idx, n = ops.nms(boxes, scores, thr, 7, implementation='reference')
  np.testing.assert_array_equal(_valid(idx, n), want[:7])


@pytest.mark.parametrize('name', ['bnms_trick', 'bnms_loop'])
def test_batched_nms_matches_torchvision(tv, name):
  b, s, c = tv[f'{name}_boxes'], tv[f'{name}_scores'], tv[f'{name}_classes']
  idx, n = ops.batched_nms(b, s, c, 0.5, len(b), implementation='reference')
  np.testing.assert_array_equal(_valid(idx, n), tv[f'{name}_keep'])


def test_pallas_kernel_equals_reference_in_interpret_mode(tv):
  boxes, scores = tv['nms_small_boxes'], tv['nms_small_scores']
  classes = np.arange(len(boxes)) % 3
  for cls in (None, classes):
    _, sb, sc, valid = sort_for_nms(jnp.asarray(boxes), jnp.asarray(scores), 0.2,
                                    None if cls is None else jnp.asarray(cls))
    for thr in (0.3, 0.5):
      ref = nms_keep_reference(sb, sc, valid, thr, len(boxes), tile=16)
      got = nms_kernel.nms_keep_pallas(sb, sc, valid, thr, len(boxes), tile=16, interpret=True)
      np.testing.assert_array_equal(got, ref)
  # Through the public dispatcher (one tile).
  idx, n = ops.nms(boxes, scores, 0.5, 20, implementation='pallas')
  np.testing.assert_array_equal(_valid(idx, n), tv['nms_small_keep_0.5'][:20])


def test_lecture_nms_procedure():
  # Per class: drop p < 0.6, take the largest, drop IoU >= 0.5 with it, repeat.
  boxes = np.array([[0, 0, 10, 10],    # 0 car 0.9
                    [1, 1, 11, 11],    # 1 car 0.8, IoU 0.68 with 0 -> dropped
                    [20, 0, 30, 10],   # 2 car 0.7, disjoint -> kept
                    [0, 0, 10, 10],    # 3 person 0.85, other class -> kept
                    [5, 0, 15, 10],    # 4 car 0.75, IoU 1/3 with 0 -> kept
                    [40, 40, 50, 50]], np.float32)  # 5 car 0.5 < 0.6 -> dropped
  scores = np.array([0.9, 0.8, 0.7, 0.85, 0.75, 0.5], np.float32)
  classes = np.array([0, 0, 0, 1, 0, 0])
  idx, n = ops.batched_nms(boxes, scores, classes, 0.5, 6, score_threshold=0.6)
  np.testing.assert_array_equal(_valid(idx, n), [0, 3, 4, 2])
  assert np.asarray(idx).shape == (6,)


def test_runs_under_x64():
  # The lecture case again with 64-bit types enabled (float64 R-CNN parity runs): same kept boxes, int32 outputs.
  boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 0, 30, 10], [0, 0, 10, 10], [5, 0, 15, 10]], np.float64)
  scores = np.array([0.9, 0.8, 0.7, 0.85, 0.75])
  with jax.enable_x64(True):
    idx, n = ops.batched_nms(jnp.asarray(boxes), jnp.asarray(scores), jnp.asarray([0, 0, 0, 1, 0]), 0.5, 5)
  np.testing.assert_array_equal(_valid(idx, n), [0, 3, 4, 2])
  assert np.asarray(idx).dtype == np.int32


def test_jit_and_vmap():
  rng = np.random.default_rng(0)
  xy = rng.uniform(0, 50, (3, 40, 2))
  boxes = np.concatenate([xy, xy + rng.uniform(5, 20, (3, 40, 2))], -1).astype(np.float32)
  scores = rng.uniform(size=(3, 40)).astype(np.float32)
  f = jax.jit(jax.vmap(lambda b, s: ops.nms(b, s, 0.5, 10)))
  idx, n = f(boxes, scores)
  for i in range(3):
    one, m = ops.nms(boxes[i], scores[i], 0.5, 10)
    np.testing.assert_array_equal(idx[i], one)
    assert int(n[i]) == int(m)
  classes = (np.arange(40) % 2)[None].repeat(3, 0)
  bidx, _ = jax.vmap(lambda b, s, c: ops.batched_nms(b, s, c, 0.5, 10))(boxes, scores, classes)
  np.testing.assert_array_equal(bidx[2], ops.batched_nms(boxes[2], scores[2], classes[2], 0.5, 10)[0])
  sidx, sscores, _ = jax.vmap(lambda b, s: ops.soft_nms(b, s, 5))(boxes, scores)
  one_idx, one_scores, _ = ops.soft_nms(boxes[1], scores[1], 5)
  np.testing.assert_array_equal(sidx[1], one_idx)
  np.testing.assert_allclose(sscores[1], one_scores, rtol=1e-6)


def test_edge_cases_and_errors():
  idx, n = ops.nms(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), 0.5, 3)
  np.testing.assert_array_equal(idx, [-1, -1, -1])
  assert int(n) == 0
  idx, n = ops.nms(np.array([[0, 0, 1, 1.0]]), np.array([np.nan]), 0.5, 2)
  assert int(n) == 0
  with pytest.raises(UserError, match='scores'):
    ops.nms(np.zeros((3, 4)), np.zeros((4,)), 0.5, 2)
  with pytest.raises(UserError):
    ops.nms(np.zeros((3, 4)), np.zeros((3,)), 0.5, 0)


def _soft_nms_numpy(boxes, scores, method, sigma, thr, score_thr):
  """Float64 loop after Bodla et al., Algorithm 1."""
  boxes, s = boxes.astype(np.float64), scores.astype(np.float64).copy()
  alive = np.ones(len(s), bool)
  out_i, out_s = [], []
  while alive.any():
    i = int(np.argmax(np.where(alive, s, -np.inf)))
    if s[i] < score_thr:
      break
    out_i.append(i)
    out_s.append(s[i])
    alive[i] = False
    iou = np.asarray(ops.box_iou(boxes[i:i + 1].astype(np.float32), boxes.astype(np.float32)))[0]
    if method == 'linear':
      s = np.where(alive & (iou > thr), s * (1 - iou), s)
    else:
      s = np.where(alive, s * np.exp(-iou**2 / sigma), s)
  return out_i, out_s


@pytest.mark.parametrize('method', ['linear', 'gaussian'])
def test_soft_nms_matches_numpy(tv, method):
  boxes, scores = tv['nms_small_boxes'], tv['nms_small_scores'] + np.linspace(0, 1e-3, 60, dtype=np.float32)
  want_i, want_s = _soft_nms_numpy(boxes, scores, method, 0.5, 0.3, 0.05)
  idx, out_scores, n = ops.soft_nms(boxes, scores, 60, method=method, sigma=0.5, iou_threshold=0.3,
                                    score_threshold=0.05)
  n = int(n)
  assert n == len(want_i)
  np.testing.assert_array_equal(np.asarray(idx)[:n], want_i)
  np.testing.assert_allclose(np.asarray(out_scores)[:n], want_s, rtol=1e-5)
  assert np.all(np.asarray(idx)[n:] == -1)


def _greedy_keep_numpy(boxes, valid, thr):
  """Textbook greedy NMS in float64 over boxes already in score order: keep mask [N]."""
  b = boxes.astype(np.float64)
  area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  keep = np.zeros(len(b), bool)
  for i in np.flatnonzero(valid):
    kept = np.flatnonzero(keep)
    lt, rb = np.maximum(b[kept, :2], b[i, :2]), np.minimum(b[kept, 2:], b[i, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    keep[i] = not np.any(inter / (area[kept] + area[i] - inter) > thr)
  return keep


def test_few_valid_boxes_among_many_tiles_stop_early_with_the_same_result():
  """A score threshold that few boxes pass (the R-CNN case): the tiles after the last valid box are skipped, and the
  keep mask still equals greedy NMS (max_output_size never reached, so only the valid-tile exit ends the loop)."""
  rng = np.random.default_rng(3)
  n, n_valid = 4096, 40
  xy = rng.uniform(0, 100, (n, 2))
  boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2))], 1).astype(np.float32)
  valid = np.zeros(n, bool)
  valid[rng.choice(n // 2, n_valid, replace=False)] = True  # scattered over the first half's tiles
  keep = np.asarray(jax.jit(lambda b, v: nms_keep_reference(b, jnp.zeros(n, jnp.int32), v, 0.5, 100, tile=64))(
      jnp.asarray(boxes), jnp.asarray(valid)))
  expected = _greedy_keep_numpy(boxes, valid, 0.5)
  np.testing.assert_array_equal(keep, expected)
  # The Pallas kernel takes the same exit (interpret mode on CPU, on the first 1,024 boxes: about half the valid ones).
  head = slice(0, 1024)
  got = nms_kernel.nms_keep_pallas(jnp.asarray(boxes[head]), jnp.zeros(1024, jnp.int32), jnp.asarray(valid[head]),
                                   0.5, 100, tile=64, interpret=True)
  np.testing.assert_array_equal(got, _greedy_keep_numpy(boxes[head], valid[head], 0.5))
  none_valid = nms_kernel.nms_keep_pallas(jnp.asarray(boxes[:256]), jnp.zeros(256, jnp.int32),
                                          jnp.zeros(256, bool), 0.5, 100, tile=64, interpret=True)
  assert not np.any(np.asarray(none_valid))
