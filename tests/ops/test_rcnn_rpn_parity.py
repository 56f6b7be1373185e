"""Faster R-CNN's proposal stage and transform against torchvision 0.29.1 (fixtures made by
tests/fixtures/rcnn_rpn/make_fixtures.py): anchors, box coding, matcher, sampler, proposal filtering, RPN loss,
resize/normalise/pad and its inverse. Max differences are printed (run with -s to see them)."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.errors import DataError, UserError
from vision_jax.losses import rpn as rpn_loss_lib
from vision_jax.ops import anchors as anchors_lib
from vision_jax.ops import box_coding, matching, proposals, rcnn_transform, sampling

FIXTURE = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'rcnn_rpn', 'rcnn_rpn.npz')
FPN = (((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
ANCHOR_CONFIGS = {'fpn': FPN, 'single': (((128, 256, 512),), ((0.5, 1.0, 2.0),)),
                  'odd': (((20, 45),), ((0.7, 1.3, 3.0),)), 'match': (((16, 32),), ((0.5, 1.0, 2.0),))}


@pytest.fixture(scope='module')
def tv():
  with np.load(FIXTURE, allow_pickle=False) as data:
    return {k: data[k] for k in data.files}


def report(name, got, want):
  diff = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)), initial=0.0))
  print(f'[rcnn_rpn parity] {name}: max |diff| = {diff:.3g}')
  return diff


def fpn_feature_sizes(padded):
  sizes = [(padded[0] // s, padded[1] // s) for s in (4, 8, 16, 32)]
  return sizes + [((sizes[-1][0] - 1) // 2 + 1, (sizes[-1][1] - 1) // 2 + 1)]


def test_anchors_equal_torchvision(tv):
  for name, (sizes, ratios) in ANCHOR_CONFIGS.items():
    feature_sizes = [tuple(f) for f in tv[f'anchors_{name}_features']]
    got = anchors_lib.rcnn_anchors(tuple(tv[f'anchors_{name}_padded']), feature_sizes, sizes, ratios)
    assert got.shape == tv[f'anchors_{name}'].shape
    assert report(f'anchors {name}', got, tv[f'anchors_{name}']) == 0.0
    assert sum(anchors_lib.rcnn_anchors_per_level(feature_sizes, sizes, ratios)) == got.shape[0]
  # torchvision rounds the half extents: the 0.5-ratio 32 anchor is 46 x 22, not 45.25 x 22.63.
  np.testing.assert_array_equal(anchors_lib.rcnn_base_anchors((32,), (0.5,)), [[-23, -11, 23, 11]])


def test_box_coding_equals_torchvision(tv):
  for seed in range(3):
    anchors, gt, deltas = (tv[f'coding{seed}_{k}'] for k in ('anchors', 'gt', 'deltas'))
    for name, weights in (('w1', (1.0, 1.0, 1.0, 1.0)), ('w10', (10.0, 10.0, 5.0, 5.0))):
      enc = box_coding.faster_rcnn_encode(jnp.asarray(anchors), jnp.asarray(gt), weights)
      dec = box_coding.faster_rcnn_decode(jnp.asarray(anchors), jnp.asarray(deltas), weights)
      assert report(f'encode seed {seed} {name}', enc, tv[f'coding{seed}_{name}_encode']) < 1e-5
      want = tv[f'coding{seed}_{name}_decode']
      assert np.isfinite(want).all()  # the dw/dh clip kept exp() finite for the huge deltas
      scale = np.maximum(np.abs(want), 1.0)
      assert report(f'decode seed {seed} {name} (relative)', np.asarray(dec) / scale, want / scale) < 1e-5


def test_matcher_equals_torchvision_with_ties_and_zero_rows(tv):
  rng = np.random.default_rng(0)
  match = jax.jit(matching.rcnn_match, static_argnums=(1, 2, 3))
  np.testing.assert_array_equal(match(tv['match0_iou'], 0.7, 0.3, True), tv['match0_rpn'])
  for i in range(int(tv['match_num'])):
    # Every case padded to one [6, 384] shape: random IoUs in the invalid rows, zero IoU in the extra columns
    # (which are sliced off) must change nothing.
    iou = tv[f'match{i}_iou']
    g, a = iou.shape
    padded = np.zeros((6, 384), np.float32)
    padded[:g, :a] = iou
    padded[g:] = rng.uniform(0, 1, (6 - g, 384))
    valid = np.arange(6) < g
    np.testing.assert_array_equal(match(padded, 0.7, 0.3, True, valid)[:a], tv[f'match{i}_rpn'])
    np.testing.assert_array_equal(match(padded, 0.5, 0.5, False, valid)[:a], tv[f'match{i}_head'])
  print('[rcnn_rpn parity] matcher: exact (max |diff| = 0)')
  # iou_match forces only the first best anchor of a non-zero row; torchvision revives every tied one.
  for i in (3, 7):  # an all-zero row
    assert not np.array_equal(matching.iou_match(jnp.asarray(tv[f'match{i}_iou']), 0.7, 0.3), tv[f'match{i}_rpn'])
  iou = jnp.asarray(tv['match4_iou'])
  # No valid ground truth: all background (torchvision's empty-target path).
  none_valid = matching.rcnn_match(iou, 0.7, 0.3, True, jnp.zeros(iou.shape[0], bool))
  np.testing.assert_array_equal(none_valid, np.full(iou.shape[1], matching.NEGATIVE))


def test_balanced_sampler_equals_torchvision(tv):

  @functools.partial(jax.jit, static_argnums=(1, 2))
  def sample(labels, batch, fraction, perm_pos, perm_neg, key):
    return (sampling.balanced_sample(labels, batch, fraction, perm_pos, perm_neg),
            sampling.balanced_sample(labels, batch, fraction, key=key))

  for i in range(5):
    batch, fraction = tv[f'sample{i}_config']
    labels = tv[f'sample{i}_labels']
    (pos, neg), (kpos, kneg) = sample(labels, int(batch), float(fraction), tv[f'sample{i}_perm_pos'],
                                      tv[f'sample{i}_perm_neg'], jax.random.key(i))
    np.testing.assert_array_equal(pos, tv[f'sample{i}_pos'])
    np.testing.assert_array_equal(neg, tv[f'sample{i}_neg'])
    # Drawn from a key: the same counts, a subset of the right candidates.
    assert int(kpos.sum()) == int(tv[f'sample{i}_pos'].sum()) and int(kneg.sum()) == int(tv[f'sample{i}_neg'].sum())
    assert np.all(labels[np.asarray(kpos)] >= 1) and np.all(labels[np.asarray(kneg)] == 0)
  print('[rcnn_rpn parity] sampler masks: exact (max |diff| = 0)')


def test_filter_proposals_equals_torchvision(tv):
  compiled = {}
  for i in range(3):
    padded = tuple(int(v) for v in tv[f'prop{i}_padded'])
    pre, post, thresh = tv[f'prop{i}_config']
    static = (padded, int(pre), int(post))
    if static not in compiled:  # cases 1 and 2 share one compilation (the score threshold is traced)
      anchors = anchors_lib.rcnn_anchors(padded, fpn_feature_sizes(padded), *FPN)
      per_level = tuple(int(n) for n in tv[f'prop{i}_per_level'])
      compiled[static] = jax.jit(jax.vmap(
          lambda d, o, s, t, anchors=anchors, per_level=per_level, pre=int(pre), post=int(post):
          proposals.filter_proposals(anchors, d, o, s, per_level, pre, post, 0.7, t), in_axes=(0, 0, 0, None)))
    boxes, scores, valid = compiled[static](tv[f'prop{i}_deltas'], tv[f'prop{i}_objectness'], tv[f'prop{i}_sizes'],
                                            np.float32(thresh))
    np.testing.assert_array_equal(np.sum(valid, axis=1), tv[f'prop{i}_count'])
    for j, count in enumerate(tv[f'prop{i}_count']):
      assert valid[j, :count].all()
    assert report(f'proposals case {i} boxes', boxes, tv[f'prop{i}_boxes']) < 1e-4
    assert report(f'proposals case {i} scores', scores, tv[f'prop{i}_scores']) < 1e-6


def test_rpn_loss_equals_torchvision(tv):
  anchors = anchors_lib.rcnn_anchors((64, 64), fpn_feature_sizes((64, 64)), *FPN)
  for case in range(2):
    batch = int(tv[f'loss{case}_batch'])

    @jax.jit
    def targets_and_loss(gt, gt_valid, objectness, deltas, perm_pos, perm_neg, batch=batch):
      labels, targets = jax.vmap(lambda g, v: rpn_loss_lib.rpn_targets(anchors, g, v))(gt, gt_valid)
      return labels, targets, rpn_loss_lib.rpn_loss(objectness, deltas, anchors, gt, gt_valid,
                                                    permutations_pos=perm_pos, permutations_neg=perm_neg,
                                                    batch_size_per_image=batch)

    labels, targets, got = targets_and_loss(*(tv[f'loss{case}_{k}'] for k in (
        'gt', 'gt_valid', 'objectness', 'deltas', 'perm_pos', 'perm_neg')))
    np.testing.assert_array_equal(labels, tv[f'loss{case}_labels'])
    if case == 0:
      fg = tv['loss0_labels'][..., None] == 1
      assert report('rpn regression targets', np.where(fg, targets, 0), tv['loss0_targets']) < 1e-5
    want = tv[f'loss{case}_values']
    assert report(f'rpn loss case {case} (objectness, box)', np.array(got), want) < 1e-6 * max(1.0, want.max())


def test_rcnn_transform_and_inverse_equal_torchvision(tv):
  for i in range(3):
    min_size, max_size = (int(v) for v in tv[f'tf{i}_config'])
    n = len(tv[f'tf{i}_image_sizes'])
    images = [tv[f'tf{i}_image{j}'] for j in range(n)]
    out = rcnn_transform.rcnn_transform(images, [tv[f'tf{i}_boxes{j}'] for j in range(n)], min_size, max_size,
                                        masks=[tv[f'tf{i}_masks{j}'] for j in range(n)])
    sy, sx = tv[f'tf{i}_stride']
    assert out['images'].shape == tuple(tv[f'tf{i}_batch_shape'])
    np.testing.assert_array_equal(out['image_sizes'], tv[f'tf{i}_image_sizes'])
    assert report(f'transform case {i} images', out['images'][:, ::sy, ::sx], tv[f'tf{i}_batch']) < 1e-6
    for j in range(n):
      assert report(f'transform case {i} boxes {j}', out['boxes'][j], tv[f'tf{i}_out_boxes{j}']) == 0.0
      np.testing.assert_array_equal(out['masks'][j][:, ::sy, ::sx], tv[f'tf{i}_out_masks{j}'])
    # The jittable resizes match torchvision as well.
    h, w = out['image_sizes'][0]
    normalised = (images[0] - np.float32(rcnn_transform.IMAGENET_MEAN)) / np.float32(rcnn_transform.IMAGENET_STD)
    resized = jax.jit(rcnn_transform.resize_bilinear, static_argnums=1)(normalised, (int(h), int(w)))
    want = tv[f'tf{i}_batch'][0, :-(-h // sy), :-(-w // sx)]
    assert report(f'transform case {i} jitted resize', resized[::sy, ::sx], want) < 1e-6
    masks = jax.jit(rcnn_transform.resize_masks_nearest, static_argnums=1)(tv[f'tf{i}_masks0'], (int(h), int(w)))
    np.testing.assert_array_equal(masks[:, ::sy, ::sx], tv[f'tf{i}_out_masks0'])
    postprocess = jax.jit(jax.vmap(rcnn_transform.postprocess_boxes))
    post = postprocess(tv[f'tf{i}_det_boxes'], out['image_sizes'], out['original_sizes'])
    assert report(f'postprocess case {i} boxes', post, tv[f'tf{i}_post_boxes']) == 0.0


def test_rpn_loss_gradients_touch_only_sampled_anchors(tv):
  anchors = anchors_lib.rcnn_anchors((64, 64), fpn_feature_sizes((64, 64)), *FPN)
  gt, gt_valid = tv['loss1_gt'], tv['loss1_gt_valid']
  labels = tv['loss1_labels']

  @jax.jit
  def grads(objectness, deltas):
    total = lambda o, d: sum(rpn_loss_lib.rpn_loss(o, d, anchors, gt, gt_valid, key=jax.random.key(0),
                                                   batch_size_per_image=64))
    return jax.grad(total, argnums=(0, 1))(objectness, deltas)

  g_obj, g_box = grads(tv['loss1_objectness'], tv['loss1_deltas'])
  assert np.isfinite(g_obj).all() and np.isfinite(g_box).all()  # images without ground truth included
  num_pos = np.minimum((labels == 1).sum(1), 32)
  num_neg = np.minimum((labels == 0).sum(1), 64 - num_pos)
  np.testing.assert_array_equal((np.asarray(g_obj) != 0).sum(1), num_pos + num_neg)
  np.testing.assert_array_equal((np.abs(np.asarray(g_box)).sum(-1) != 0).sum(1), num_pos)


def test_user_errors_are_one_line():
  labels = np.zeros(8, np.int32)
  with pytest.raises(UserError, match='key'):
    sampling.balanced_sample(labels, 4, 0.5)
  with pytest.raises(UserError, match='permutation'):
    sampling.balanced_sample(labels, 4, 0.5, permutation_pos=np.zeros(1, np.int32), permutation_neg=np.zeros(4))
  with pytest.raises(UserError, match='num_anchors_per_level'):
    proposals.filter_proposals(np.zeros((6, 4), np.float32), np.zeros((6, 4), np.float32), np.zeros(6, np.float32),
                               np.array([8, 8]), (3, 2))
  with pytest.raises(UserError, match='one of each per level'):
    anchors_lib.rcnn_anchors((64, 64), [(8, 8)], ((32,), (64,)), ((1.0,),))
  with pytest.raises(UserError, match='low'):
    matching.rcnn_match(jnp.zeros((2, 3)), 0.3, 0.7)
  with pytest.raises(DataError, match='float images'):
    rcnn_transform.rcnn_transform([np.zeros((8, 8, 3), np.uint8)])
