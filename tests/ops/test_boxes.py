"""Box formats and the IoU family against torchvision and hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import ops
from vision_jax.errors import UserError


def test_formats_round_trip_and_values():
  b = np.array([[1.0, 2.0, 5.0, 10.0], [0.0, 0.0, 3.0, 3.0]], np.float32)
  np.testing.assert_allclose(ops.xyxy_to_xywh(b), [[1, 2, 4, 8], [0, 0, 3, 3]])
  np.testing.assert_allclose(ops.xyxy_to_cxcywh(b), [[3, 6, 4, 8], [1.5, 1.5, 3, 3]])
  for fmt in ('xywh', 'cxcywh'):
    np.testing.assert_allclose(ops.convert_boxes(ops.convert_boxes(b, 'xyxy', fmt), fmt, 'xyxy'), b)
  np.testing.assert_allclose(ops.convert_boxes(b, 'xyxy', 'xyxy'), b)
  np.testing.assert_allclose(ops.box_area(b), [32, 9])
  np.testing.assert_allclose(ops.clip_boxes(np.array([[-1.0, 2, 50, 7]]), (6, 40)), [[0, 2, 40, 6]])
  np.testing.assert_array_equal(ops.remove_small_boxes(b, 3.5), [True, False])


def test_bad_input_raises_user_error():
  with pytest.raises(UserError, match=r'\[\.\.\., 4\]'):
    ops.box_iou(np.zeros((3, 5)), np.zeros((2, 4)))
  with pytest.raises(UserError, match='format'):
    ops.convert_boxes(np.zeros((1, 4)), 'xyxy', 'yxyx')
  with pytest.raises(UserError, match='x2 < x1'):
    ops.generalized_box_iou(np.array([[5.0, 0, 1, 1]]), np.zeros((1, 4)))
  with pytest.raises(UserError, match='same shape'):
    ops.elementwise_box_iou(np.zeros((2, 4)), np.zeros((3, 4)))


@pytest.mark.parametrize('name', ['box_iou', 'generalized_box_iou', 'distance_box_iou', 'complete_box_iou'])
def test_pairwise_matches_torchvision(tv, name):
  got = np.asarray(getattr(ops, name)(tv['iou_a'], tv['iou_b']))
  tol = 1e-6 if name in ('box_iou', 'generalized_box_iou') else 2e-6  # DIoU/CIoU: eps placement differs
  np.testing.assert_allclose(got, tv[name], atol=tol, rtol=0)


def test_lecture_iou_threshold_example():
  # Two 2x2 boxes overlapping by half their width: IoU = 2 / 6 = 1/3 < 0.5, so not "correct";
  # overlapping by 3/4 of the width: 3 / 5 = 0.6 >= 0.5, "correct".
  truth = np.array([[0.0, 0.0, 2.0, 2.0]])
  preds = np.array([[1.0, 0.0, 3.0, 2.0], [0.5, 0.0, 2.5, 2.0]])
  iou = np.asarray(ops.box_iou(truth, preds))[0]
  np.testing.assert_allclose(iou, [1 / 3, 0.6], rtol=1e-6)
  np.testing.assert_array_equal(iou >= 0.5, [False, True])


def test_elementwise_is_diagonal_of_pairwise_and_differentiable(tv):
  a, b = tv['iou_a'][:15].astype(np.float32), tv['iou_b'][:15].astype(np.float32)
  pairs = [(ops.elementwise_box_iou, ops.box_iou), (ops.elementwise_generalized_box_iou,
            ops.generalized_box_iou), (ops.elementwise_distance_box_iou, ops.distance_box_iou),
           (ops.elementwise_complete_box_iou, ops.complete_box_iou)]
  for elem, pair in pairs:
    np.testing.assert_allclose(elem(a, b), np.diag(np.asarray(pair(a, b))), atol=1e-5)
  # 1 - GIoU as a loss: moving a prediction towards its target lowers the loss.
  loss = lambda p: jnp.sum(1 - ops.elementwise_generalized_box_iou(p, jnp.asarray(b)))
  g = jax.grad(loss)(jnp.asarray(a))
  assert np.all(np.isfinite(g))
  assert loss(jnp.asarray(a) - 0.1 * g) < loss(jnp.asarray(a))
  # Disjoint boxes: IoU is 0 but GIoU/DIoU still give a useful gradient.
  far = jnp.array([[0.0, 0.0, 1.0, 1.0]])
  tgt = jnp.array([[3.0, 0.0, 4.0, 1.0]])
  gd = jax.grad(lambda p: jnp.sum(1 - ops.elementwise_distance_box_iou(p, tgt)))(far)
  assert gd[0, 0] + gd[0, 2] < 0  # translating the box right lowers the loss
