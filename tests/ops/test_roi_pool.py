"""RoIPool against torchvision: exact outputs and gradients on random inputs, edge cases and issue 21's box."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import ops
from vision_jax.ops.roi_pool import round_half_away

ROI_FIXTURE = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'ops', 'torchvision_roi.npz')
POOL_CASES = range(5)  # see tests/fixtures/ops/make_roi_fixtures.py; case 4 holds the hand-made edge boxes


@pytest.fixture(scope='module')
def tv_roi():
  with np.load(ROI_FIXTURE) as data:
    return {k: data[k] for k in data.files}


def _case(tv_roi, i):
  return (tv_roi[f'pool{i}_features'], tv_roi[f'pool{i}_boxes'], tv_roi[f'pool{i}_batch'],
          tuple(int(v) for v in tv_roi[f'pool{i}_size']), float(tv_roi[f'pool{i}_scale']))


@pytest.mark.parametrize('case', POOL_CASES)
def test_roi_pool_is_bit_identical_to_torchvision(tv_roi, case):
  feats, boxes, bidx, size, scale = _case(tv_roi, case)
  out, vjp = jax.vjp(lambda f: ops.roi_pool(f, boxes, bidx, size, scale), jnp.asarray(feats))
  # Integer cotangents: every gradient sum is exact, so torchvision's argmax routing must match bit for bit.
  grad = vjp(jnp.asarray(tv_roi[f'pool{case}_cotangent'], jnp.float32))[0]
  np.testing.assert_array_equal(np.asarray(out), tv_roi[f'pool{case}_out'])
  np.testing.assert_array_equal(np.asarray(grad), tv_roi[f'pool{case}_grad'])


def test_roi_pool_exact_inside_a_user_jit(tv_roi):
  # Under an outer jit the output size is a compile-time constant: the bin division must stay a division.
  feats, boxes, bidx, size, scale = _case(tv_roi, 4)
  out = jax.jit(lambda f, b: ops.roi_pool(f, b, bidx, size, scale))(feats, boxes)
  np.testing.assert_array_equal(np.asarray(out), tv_roi['pool4_out'])


def test_issue_21_box_last_column():
  # Width 7 split in 6: torchvision's float32 bins are fl(7/6) wide and the last ends at ceil(6 * fl(7/6)) = 7,
  # so the last output column covers feature columns 17..18 (x = column index makes the max readable).
  cols = np.broadcast_to(np.arange(31, dtype=np.float32)[None, None, :, None], (1, 23, 31, 1))
  box = np.array([[23.546772, 12.569373, 36.94436, 18.248926]], np.float32)
  out = ops.roi_pool(cols, box, np.array([0]), (4, 6), 0.5)
  np.testing.assert_array_equal(np.asarray(out)[0, 0, :, 0], [13, 14, 15, 16, 17, 18])


def test_round_half_away_matches_c_round():
  x = np.array([0.5, -0.5, 1.5, -1.5, 2.5, -2.5, np.nextafter(np.float32(0.5), np.float32(0)), 0.0,
                -0.49999997, 3.4999998, 1e7 + 1, -7.5], np.float32)
  # float64 arithmetic is exact for these float32 values, so floor(|x| + 0.5) is C's round here.
  want = np.sign(x) * np.floor(np.abs(x.astype(np.float64)) + 0.5)
  np.testing.assert_array_equal(np.asarray(round_half_away(jnp.asarray(x))), want)


def test_roi_pool_matches_torchvision_first_fixture(tv):
  # The 2-image fixture of make_torchvision_fixtures.py (random cotangents: gradient sums to float rounding).
  f, b, i = tv['roi_features'], tv['roi_boxes'], tv['roi_batch']
  out, vjp = jax.vjp(lambda x: ops.roi_pool(x, b, i, (5, 4), 0.5), jnp.asarray(f))
  np.testing.assert_array_equal(np.asarray(out), tv['roi_pool'])
  np.testing.assert_allclose(vjp(jnp.asarray(tv['roi_cotangent']))[0], tv['roi_pool_grad'], atol=1e-5)
