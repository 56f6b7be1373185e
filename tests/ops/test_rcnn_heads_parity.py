"""R-CNN head ops against torchvision 0.29.1 on random inputs (fixtures made by
tests/fixtures/rcnn_heads/make_fixtures.py): level mapping, multi-scale RoIAlign, detection postprocessing, mask
targets, mask pasting, and the Fast/Mask R-CNN losses. Max differences are printed (run with -s to see them)."""

import importlib
import os


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.losses import rcnn_heads
from vision_jax.ops import masks, roi_heads
from vision_jax.ops.masks import expand_boxes

roi_align_lib = importlib.import_module("vision_jax.ops.roi_align")  # the package re-exports a function of that name
# Jitted once per module: eager dispatch of these many small ops is slower than compiling them.
postprocess_detections = jax.jit(roi_heads.postprocess_detections)
project_masks_on_boxes = jax.jit(masks.project_masks_on_boxes, static_argnums=(3,))
paste_masks_in_image = jax.jit(masks.paste_masks_in_image, static_argnums=(2,))
fastrcnn_loss = jax.jit(rcnn_heads.fastrcnn_loss)
maskrcnn_loss = jax.jit(rcnn_heads.maskrcnn_loss)
FIXTURE = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "rcnn_heads", "components.npz")


def _close(name, ours, expected, **tolerance):
  """assert_allclose that also prints the max absolute difference (the figure issue 16 asks for)."""
  ours, expected = np.asarray(ours, np.float64), np.asarray(expected, np.float64)
  print(f"[rcnn_heads parity] {name}: max |diff| = {np.max(np.abs(ours - expected)):.3g}")
  np.testing.assert_allclose(ours, expected, **tolerance)


@pytest.fixture(scope="module")
def fx():
  with np.load(FIXTURE, allow_pickle=False) as f:
    return {k: f[k] for k in f.files}


def test_level_mapping_equals_torchvision_including_eps_and_edges(fx):
  levels = roi_align_lib.fpn_levels(jnp.asarray(fx["levels_boxes"]), 2, 5)
  np.testing.assert_array_equal(np.asarray(levels), fx["levels"])
  assert set(np.unique(fx["levels"])) == {2, 3, 4, 5}  # the fixture covers every level and the clamps


def test_multiscale_roi_align_matches_torchvision(fx):
  feats = [jnp.asarray(fx[f"msroi_feat_{i}"]).transpose(0, 2, 3, 1) for i in range(4)]
  boxes = fx["msroi_boxes"]
  out, _ = roi_align_lib.multilevel_roi_align(feats, jnp.asarray(boxes.reshape(-1, 4)),
                                              jnp.repeat(jnp.arange(2), boxes.shape[1]), 7)
  _close("multi-scale RoIAlign", np.asarray(out).transpose(0, 3, 1, 2), fx["msroi_out"], atol=2e-5)


@pytest.mark.parametrize("image", [0, 1])
def test_postprocess_detections_matches_torchvision(fx, image):
  k = fx["post_proposals"].shape[1]
  rows = slice(image * k, (image + 1) * k)
  dets = postprocess_detections(jnp.asarray(fx["post_logits"][rows]), jnp.asarray(fx["post_regression"][rows]),
                                jnp.asarray(fx["post_proposals"][image]), jnp.asarray(fx["post_shapes"][image]),
                                jnp.ones((k,), bool))
  n = int(dets.count)
  assert n == len(fx[f"post_labels_{image}"])
  np.testing.assert_array_equal(np.asarray(dets.labels[:n]), fx[f"post_labels_{image}"])
  _close(f"postprocess boxes {image}", dets.boxes[:n], fx[f"post_boxes_{image}"], atol=1e-4)
  _close(f"postprocess scores {image}", dets.scores[:n], fx[f"post_scores_{image}"], atol=1e-6)
  assert np.all(np.asarray(dets.labels[n:]) == -1) and np.all(np.asarray(dets.scores[n:]) == 0)
  if image == 1:
    assert n < 100  # the padded case is exercised


def test_postprocess_never_detects_invalid_proposals(fx):
  k = fx["post_proposals"].shape[1]
  valid = np.arange(k) < 10
  dets = postprocess_detections(jnp.asarray(fx["post_logits"][:k]), jnp.asarray(fx["post_regression"][:k]),
                                jnp.asarray(fx["post_proposals"][0]), jnp.asarray(fx["post_shapes"][0]),
                                jnp.asarray(valid))
  n = int(dets.count)
  assert 0 < n and np.all(np.asarray(dets.indices[:n]) < 10)


def test_project_masks_on_boxes_matches_torchvision(fx):
  out = project_masks_on_boxes(jnp.asarray(fx["proj_masks"]), jnp.asarray(fx["proj_boxes"]),
                               jnp.asarray(fx["proj_matched"]), 28)
  _close("mask targets", out, fx["proj_out"], atol=2e-5)


def test_paste_masks_in_image_matches_torchvision(fx):
  out = paste_masks_in_image(jnp.asarray(fx["paste_masks"]), jnp.asarray(fx["paste_boxes"]), (50, 60))
  _close("mask pasting", out, fx["paste_out"], atol=2e-6)
  assert np.any(fx["paste_out"][0] > 0) and np.any(fx["paste_out"][1] > 0)  # boxes crossing the borders


def test_expand_boxes_by_hand():
  # Box 10 wide, 4 high centred at (5, 2), scaled by 1.5: 15 x 6.
  np.testing.assert_allclose(np.asarray(expand_boxes(jnp.asarray([[0.0, 0, 10, 4]]), 1.5)), [[-2.5, -1, 12.5, 5]])


def test_fastrcnn_loss_matches_torchvision_and_ignores_padding(fx):
  labels, targets = fx["frc_labels"], fx["frc_targets"]
  n = labels.size
  cls, box = fastrcnn_loss(jnp.asarray(fx["frc_logits"]), jnp.asarray(fx["frc_regression"]),
                           jnp.asarray(labels.reshape(-1)), jnp.asarray(targets.reshape(-1, 4)))
  _close("fastrcnn_loss (class, box)", [float(cls), float(box)], fx["frc_loss"], rtol=1e-5)
  # The same rows plus 5 padded (unsampled) rows with a positive label: same losses.
  pad = lambda a, v: np.concatenate([a, np.full((5, *a.shape[1:]), v, a.dtype)])
  cls2, box2 = fastrcnn_loss(jnp.asarray(pad(fx["frc_logits"], 3.0)), jnp.asarray(pad(fx["frc_regression"], 1.0)),
                             jnp.asarray(pad(labels.reshape(-1), 2)), jnp.asarray(pad(targets.reshape(-1, 4), 0.5)),
                             sampled=jnp.asarray(np.arange(n + 5) < n))
  np.testing.assert_allclose([float(cls2), float(box2)], fx["frc_loss"], rtol=1e-5)


def test_maskrcnn_loss_matches_torchvision_and_ignores_padding(fx):
  logits = fx["mrc_logits"].transpose(0, 2, 3, 1)  # [14, 28, 28, 6]
  n, k = fx["mrc_matched"].shape
  proposals, matched = fx["mrc_proposals"], fx["mrc_matched"]
  # Two padded (non-positive) proposals per image, with junk values.
  logits = np.concatenate([logits.reshape(n, k, 28, 28, 6), np.full((n, 2, 28, 28, 6), 5.0, np.float32)], 1)
  proposals = np.concatenate([proposals, np.tile(np.float32([[1, 1, 9, 9]]), (n, 2, 1))], 1)
  matched = np.concatenate([matched, np.zeros((n, 2), np.int32)], 1)
  positive = np.arange(k + 2)[None, :].repeat(n, 0) < k
  loss = maskrcnn_loss(jnp.asarray(logits), jnp.asarray(proposals), jnp.asarray(fx["mrc_gt_masks"]),
                       jnp.asarray(fx["mrc_gt_labels"]), jnp.asarray(matched), jnp.asarray(positive))
  _close("maskrcnn_loss", float(loss), float(fx["mrc_loss"]), rtol=1e-5)


def test_roi_head_targets_replay_torchvisions_sampling(fx):
  # Image 0 has 3 ground truths, image 1 none (padded); 5 padding proposals are appended to image 0.
  gt = np.concatenate([fx["sel_gt_boxes"], np.zeros((1, 4), np.float32)])
  gt_boxes = np.stack([gt, np.zeros_like(gt)])
  gt_labels = np.stack([np.append(fx["sel_gt_labels"], 0), np.zeros(4, np.int32)])
  gt_valid = np.asarray([[True, True, True, False], [False] * 4])
  proposals = np.concatenate([fx["sel_proposals"], np.zeros((2, 5, 4), np.float32)], 1)
  proposal_valid = np.arange(45)[None].repeat(2, 0) < 40
  out = jax.jit(jax.vmap(lambda p, v, b, l, g, pp, pn: rcnn_heads.roi_head_targets(
      p, v, b, l, g, None, pp, pn, batch_size_per_image=32)))(
          proposals, proposal_valid, gt_boxes, gt_labels, gt_valid, fx["sel_perm_pos"], fx["sel_perm_neg"])
  for i in range(2):
    n = len(fx[f"sel_out_labels_{i}"])
    assert int(jnp.sum(out.sampled[i])) == n
    np.testing.assert_array_equal(np.asarray(out.labels[i, :n]), fx[f"sel_out_labels_{i}"])
    np.testing.assert_array_equal(np.asarray(out.proposals[i, :n]), fx[f"sel_out_proposals_{i}"])
    np.testing.assert_array_equal(np.asarray(out.matched_idxs[i, :n]), fx[f"sel_out_matched_{i}"])
  # torchvision's targets of an image without ground truth are -inf (regressing onto a zero box; never used).
  n = len(fx["sel_out_labels_0"])
  _close("roi_head_targets regression targets", out.regression_targets[0, :n], fx["sel_out_targets_0"], atol=1e-5)
  assert np.all(np.isfinite(np.asarray(out.regression_targets)))


def test_roi_head_targets_with_fewer_candidates_than_the_sample_size():
  # 5 valid proposals + 1 ground truth, S = 16 (at most 4 positives): all 6 are sampled, 4 positive by hand.
  proposals = np.float32([[0, 0, 10, 10], [1, 0, 10, 10], [0, 0, 9, 10], [20, 20, 30, 30], [40, 40, 50, 50],
                          [0, 0, 0, 0]])
  valid = np.asarray([True] * 5 + [False])
  out = jax.jit(lambda k: rcnn_heads.roi_head_targets(
      jnp.asarray(proposals), jnp.asarray(valid), jnp.float32([[0, 0, 10, 10]]), jnp.int32([7]), jnp.asarray([True]),
      key=k, batch_size_per_image=16))(jax.random.key(0))
  assert int(jnp.sum(out.sampled)) == 6  # 5 valid proposals + the ground truth
  np.testing.assert_array_equal(np.asarray(out.labels[:6]), [7, 7, 7, 0, 0, 7])
  np.testing.assert_allclose(np.asarray(out.regression_targets[5]), 0, atol=1e-6)  # the ground truth onto itself
