"""RoIAlign / RoIPool against torchvision fixtures, the lectures' example, determinism and the FPN form."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import ops
from vision_jax.errors import UserError


def _args(tv):
  return tv['roi_features'], tv['roi_boxes'], tv['roi_batch']


@pytest.mark.parametrize('aligned', [False, True])
@pytest.mark.parametrize('sr', [-1, 1, 2, 3])
def test_roi_align_matches_torchvision(tv, aligned, sr):
  f, b, i = _args(tv)
  cot = jnp.asarray(tv['roi_cotangent'])
  fn = lambda x: ops.roi_align(x, b, i, (5, 4), 0.5, sr, aligned, implementation='reference')
  out, vjp = jax.vjp(fn, jnp.asarray(f))
  np.testing.assert_allclose(out, tv[f'roi_align_{aligned}_{sr}'], atol=1e-5, rtol=0)
  np.testing.assert_allclose(vjp(cot)[0], tv[f'roi_align_grad_{aligned}_{sr}'], atol=1e-5, rtol=0)


def test_pallas_kernel_matches_reference_in_interpret_mode(tv):
  f, b, i = _args(tv)
  f, b, i = f[:, :, :, :2], b[:6], i[:6]
  for aligned, sr in ((False, -1), (True, 2)):
    fn = lambda x, impl: ops.roi_align(x, b, i, (3, 2), 0.5, sr, aligned, implementation=impl)
    ref = fn(jnp.asarray(f), 'reference')
    got = fn(jnp.asarray(f), 'pallas')
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
  g_ref = jax.grad(lambda x: jnp.sum(fn(x, 'reference') ** 2))(jnp.asarray(f))
  g_pal = jax.grad(lambda x: jnp.sum(fn(x, 'pallas') ** 2))(jnp.asarray(f))
  np.testing.assert_allclose(g_pal, g_ref, atol=1e-5)


def test_lecture_example_roialign_vs_roipool():
  # 100x100 image, 32x32 feature map (scale 0.32), a 20x20 window: 6.4 feature pixels wide.
  # With features f[y, x] = x, RoIAlign samples the exact window [0, 6.4] (centre 3.2), whereas
  # RoIPool rounds the window to cells 0..6 (6 = round(6.4)) and takes their maximum.
  xs = np.broadcast_to(np.arange(32, dtype=np.float32)[None, :, None], (32, 32, 1))
  feats = xs[None]
  box = np.array([[0.0, 0.0, 20.0, 20.0]])
  idx = np.array([0])
  one = ops.roi_align(feats, box, idx, (1, 1), 0.32, sampling_ratio=1)
  np.testing.assert_allclose(one[0, 0, 0, 0], 3.2, rtol=1e-6)
  two = ops.roi_align(feats, box, idx, (2, 2), 0.32, sampling_ratio=1)
  np.testing.assert_allclose(two[0, 0, :, 0], [1.6, 4.8], rtol=1e-5)  # bin centres of 3.2-wide bins
  pooled = ops.roi_pool(feats, box, idx, (2, 2), 0.32)
  np.testing.assert_allclose(pooled[0, 0, :, 0], [3.0, 6.0])  # cells 0..3 and 3..6: quantized


def test_gradients_are_deterministic(tv):
  f, b, i = _args(tv)
  cot = jnp.asarray(tv['roi_cotangent'])
  for sorted_grads in (False, True):
    fn = jax.jit(lambda x, s=sorted_grads: jax.vjp(
        lambda y: ops.roi_align(y, b, i, (5, 4), 0.5, 2, True, deterministic_scatter=s), x)[1](cot)[0])
    g1 = np.asarray(fn(jnp.asarray(f)))
    g2 = np.asarray(fn(jnp.asarray(f)))
    assert g1.tobytes() == g2.tobytes()
    np.testing.assert_allclose(g1, tv['roi_align_grad_True_2'], atol=1e-5)


def test_jit_vmap_and_adaptive_bound(tv):
  f, b, i = _args(tv)
  fn = jax.jit(lambda x, bb: ops.roi_align(x, bb, i, (5, 4), 0.5, 2, aligned=True))
  np.testing.assert_allclose(fn(f, b), tv['roi_align_True_2'], atol=1e-5)
  batched = jax.vmap(lambda x: ops.roi_align(x, b, i, (5, 4), 0.5, 2, True))(jnp.stack([f, 2 * f]))
  np.testing.assert_allclose(batched[1], 2 * tv['roi_align_True_2'], atol=2e-5)
  with pytest.raises(UserError, match='max_sampling_ratio'):
    jax.jit(lambda bb: ops.roi_align(f, bb, i, (5, 4), 0.5, -1))(b)
  # With a large enough static bound the adaptive result under jit is exact.
  adaptive = jax.jit(lambda bb: ops.roi_align(f, bb, i, (5, 4), 0.5, -1, max_sampling_ratio=8))(b)
  np.testing.assert_allclose(adaptive, tv['roi_align_False_-1'], atol=1e-5)


def test_bad_inputs():
  with pytest.raises(UserError, match='NHWC'):
    ops.roi_align(np.zeros((4, 4, 3)), np.zeros((1, 4)), np.zeros((1,), int), 2)
  with pytest.raises(UserError, match='same length'):
    ops.roi_align(np.zeros((1, 4, 4, 3)), np.zeros((2, 4)), np.zeros((1,), int), 2)


def test_multilevel_assigns_levels_and_pools_from_them():
  # FPN eq. 1: a 224x224 box goes to level 4, 112 to 3, 448 to 5, tiny boxes clip to 2.
  boxes = np.array([[0, 0, 224, 224], [0, 0, 112, 112], [0, 0, 448, 448], [0, 0, 10, 10]], np.float32)
  np.testing.assert_array_equal(ops.fpn_levels(boxes, 2, 5), [4, 3, 5, 2])
  rng = np.random.default_rng(0)
  levels = (2, 3, 4, 5)
  feats = [rng.normal(size=(1, 512 >> l, 512 >> l, 2)).astype(np.float32) for l in levels]
  idx = np.zeros(4, np.int32)
  out, lvl = ops.multilevel_roi_align(feats, boxes, idx, (2, 2), levels=levels, sampling_ratio=2)
  for k, level in enumerate(np.asarray(lvl)):
    want = ops.roi_align(feats[levels.index(level)], boxes[k:k + 1], idx[:1], (2, 2), 2.0**-level, 2)
    np.testing.assert_allclose(out[k], want[0], atol=1e-6)


@pytest.fixture(scope='module')
def tv_pyramid():
  path = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'ops', 'torchvision_roi.npz')
  with np.load(path) as data:
    levels = tuple(int(l) for l in data['ms_levels'])
    return {'levels': levels, 'features': [data[f'ms_features{l}'] for l in levels],
            'grads': [data[f'ms_grad{l}'] for l in levels],
            **{k: data[f'ms_{k}'] for k in ('boxes', 'batch', 'cotangent', 'out')}}


@pytest.mark.parametrize('implementation', ['reference', 'pallas'])
def test_multilevel_matches_torchvision_multiscale_roi_align(tv_pyramid, implementation):
  # torchvision.ops.MultiScaleRoIAlign over P2..P5 of a 2-image batch, boxes of every level and both clamps.
  p = tv_pyramid
  fn = jax.jit(lambda fs, b: ops.multilevel_roi_align(fs, b, p['batch'], (5, 4), p['levels'], 2,
                                                      implementation=implementation))
  (out, lvl), vjp = jax.vjp(lambda fs: fn(fs, p['boxes']), [jnp.asarray(f) for f in p['features']])
  assert set(np.asarray(lvl).tolist()) == set(p['levels'])
  np.testing.assert_allclose(out, p['out'], atol=1e-5, rtol=0)
  grads = vjp((jnp.asarray(p['cotangent']), np.zeros(lvl.shape, jax.dtypes.float0)))[0]
  for got, want in zip(grads, p['grads']):
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_multilevel_adaptive_sampling_and_empty(tv_pyramid):
  p = tv_pyramid
  feats = [f[:1] for f in p['features']]
  boxes, idx = p['boxes'][:6], np.zeros(6, np.int32)
  eager, lvl = ops.multilevel_roi_align(feats, boxes, idx, (3, 3), p['levels'], sampling_ratio=-1)
  for k, level in enumerate(np.asarray(lvl)):
    want = ops.roi_align(feats[level - 2], boxes[k:k + 1], idx[:1], (3, 3), 2.0**-level, -1)
    np.testing.assert_allclose(eager[k], want[0], atol=1e-6)
  jitted = jax.jit(lambda b: ops.multilevel_roi_align(feats, b, idx, (3, 3), p['levels'], -1,
                                                      max_sampling_ratio=64)[0])(boxes)
  np.testing.assert_allclose(jitted, eager, atol=1e-6)
  none, _ = ops.multilevel_roi_align(feats, np.zeros((0, 4), np.float32), np.zeros(0, np.int32), 2, p['levels'])
  assert none.shape == (0, 2, 2, 3)
  with pytest.raises(UserError, match='consecutive'):
    ops.multilevel_roi_align(feats[:2], boxes, idx, 2, levels=(2, 4))
