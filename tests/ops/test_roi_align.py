"""RoIAlign / RoIPool against torchvision fixtures, the lectures' example, determinism and the FPN form."""

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


def test_roi_pool_matches_torchvision(tv):
  f, b, i = _args(tv)
  out, vjp = jax.vjp(lambda x: ops.roi_pool(x, b, i, (5, 4), 0.5), jnp.asarray(f))
  np.testing.assert_allclose(out, tv['roi_pool'], atol=1e-6, rtol=0)
  np.testing.assert_allclose(vjp(jnp.asarray(tv['roi_cotangent']))[0], tv['roi_pool_grad'], atol=1e-5)


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
