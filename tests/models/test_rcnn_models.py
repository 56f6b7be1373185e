"""ResNet-FPN Faster/Mask R-CNN: parameter counts equal torchvision's, torchvision weights import and reproduce its
feature maps, head outputs and end-to-end detections (a reduced-width model whose state dict and outputs are in
tests/fixtures/rcnn_heads/, made by make_fixtures.py with torchvision 0.29.1), and the backbone's conventions."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import models
from vision_jax.errors import CheckpointError
from vision_jax.interop import torch_detection
from vision_jax.models.detectors import rcnn
from vision_jax.models.detectors.rcnn import RCNN
from vision_jax.models.detectors.rcnn.backbone import FrozenBatchNorm, nearest_resize
from vision_jax.models.detectors.rcnn.inference import InferenceConfig, detect_images

HERE = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "rcnn_heads")
# torchvision 0.29.1, sum(p.numel() for p in model.parameters()) (also stored in components.npz by the script).
COUNTS = {("fasterrcnn_resnet50_fpn", "batch"): 41_808_406, ("fasterrcnn_resnet50_fpn", "frozen"): 41_755_286,
          ("maskrcnn_resnet50_fpn", "batch"): 44_454_513, ("maskrcnn_resnet50_fpn", "frozen"): 44_401_393}
SMALL = dict(num_classes=11, stage_sizes=(1, 1, 1, 1), width=8, norm="batch", trainable_layers=5, fpn_channels=32,
             representation_size=64, mask=True, mask_layers=(32,) * 4, mask_dim_reduced=32)
SMALL_ANCHORS = ((8,), (16,), (32,), (64,), (128,))  # the fixture's AnchorGenerator sizes


def _load(name):
  with np.load(os.path.join(HERE, name), allow_pickle=False) as f:
    return {k: f[k] for k in f.files}


@pytest.mark.parametrize("name,norm", sorted(COUNTS))
def test_parameter_counts_equal_torchvision(name, norm):
  stored = _load("components.npz")[f"count_{name.split('rcnn')[0]}_{norm}"]
  assert int(stored) == COUNTS[(name, norm)]
  assert models.count_params(models.get(name, norm=norm), (64, 64, 3))["params"] == COUNTS[(name, norm)]


def test_registered_presets():
  assert set(rcnn.NAMES) <= set(models.names())
  small = models.get("fasterrcnn_small_fpn")
  assert small.num_classes == 11 and not small.mask and models.get("maskrcnn_resnet50_fpn").mask
  assert rcnn.SMALL_ANCHOR_SIZES == SMALL_ANCHORS


@pytest.fixture(scope="module")
def small():
  """The reduced-width torchvision Mask R-CNN imported into ours, its fixture outputs, and our pyramid."""
  model = RCNN(**SMALL)
  variables = torch_detection.load_rcnn(model, os.path.join(HERE, "small_state.npz"))
  out = _load("small_outputs.npz")
  feats = jax.jit(lambda v, x: model.apply(v, x, method=RCNN.features))(
      variables, jnp.asarray(out["batch"]).transpose(0, 2, 3, 1))
  return model, variables, out, feats


def _close(ours, theirs, rtol=1e-4):
  theirs = np.asarray(theirs)
  diff = np.abs(np.asarray(ours) - theirs).max()
  print(f"{theirs.shape}: max abs diff {diff:.2e}, max |value| {np.abs(theirs).max():.2e}")  # shown with -s
  np.testing.assert_allclose(np.asarray(ours), theirs, rtol=rtol, atol=rtol * np.abs(theirs).max())


def test_imported_backbone_and_fpn_give_torchvisions_maps(small):
  _, _, out, feats = small
  assert len(feats) == 5
  for i, f in enumerate(feats):
    _close(f, out[f"feature_{i}"].transpose(0, 2, 3, 1))


def test_imported_heads_give_torchvisions_outputs(small):
  model, variables, out, feats = small
  _check_heads(model, variables, feats, out)


def _check_heads(model, variables, feats, out):
  """RPN head, box branch on the fixture's proposals and mask branch on its boxes, against torchvision's."""

  @jax.jit
  def heads(v, feats, proposals, boxes):
    rpn = model.apply(v, feats, method=RCNN.rpn)
    return rpn, model.apply(v, feats, proposals, method=RCNN.box_branch), model.apply(
        v, feats, boxes, method=RCNN.mask_branch)

  c = model.num_classes
  (objectness, deltas), (logits, regression), masks = heads(variables, feats, jnp.asarray(out["proposals"]),
                                                           jnp.asarray(out["mask_boxes"]))
  _close(objectness.reshape(-1), out["objectness"][:, 0])
  _close(deltas.reshape(-1, 4), out["rpn_deltas"])
  _close(logits.reshape(-1, c), out["class_logits"])
  _close(regression.reshape(-1, 4 * c), out["box_regression"])
  _close(masks.reshape(-1, 28, 28, c).transpose(0, 3, 1, 2), out["mask_logits"])


def test_end_to_end_detections_equal_torchvisions(small):
  model, variables, out, _ = small
  results = detect_images(model, variables, list(out["images"]), 64, 64, InferenceConfig(anchor_sizes=SMALL_ANCHORS))
  for i, r in enumerate(results):
    np.testing.assert_array_equal(r["labels"], out[f"det_labels_{i}"])
    np.testing.assert_allclose(r["boxes"], out[f"det_boxes_{i}"], atol=1e-3)
    np.testing.assert_allclose(r["scores"], out[f"det_scores_{i}"], atol=1e-5)
    masks = out[f"det_masks_{i}"]
    np.testing.assert_allclose(r["masks"][:len(masks)], masks, atol=1e-5)


def test_importer_reports_missing_and_unexpected_entries():
  state = _load("small_state.npz")
  state.pop("rpn.head.cls_logits.bias")
  state["roi_heads.extra.weight"] = np.zeros((2, 2), np.float32)
  expected = "missing: params/rpn_head/cls_logits/bias.*unexpected: roi_heads.extra.weight"
  with pytest.raises(CheckpointError, match=expected):
    torch_detection.load_rcnn(RCNN(**SMALL), state)


def test_torchvision_names_map_to_our_modules():
  path = torch_detection.our_path
  assert path("backbone.body.layer3.5.downsample.1") == ("body", "layer3_5", "downsample_bn")
  assert path("backbone.fpn.layer_blocks.2.0") == ("fpn", "layer_2")
  assert path("rpn.head.conv.0.0") == ("rpn_head", "conv")
  assert path("roi_heads.mask_head.mask_fcn2") == ("mask_head", "conv_1")  # before torchvision 0.13
  assert path("roi_heads.keypoint_head.0") is None


def test_frozen_batch_norm_formula():
  x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype(np.float32)
  stats = {k: np.random.default_rng(i).uniform(0.5, 1.5, 4).astype(np.float32)
           for i, k in enumerate(("scale", "bias", "mean", "var"))}
  y = FrozenBatchNorm().apply({"batch_stats": stats}, x)
  scale = stats["scale"] / np.sqrt(stats["var"] + 1e-5)
  np.testing.assert_allclose(np.asarray(y), x * scale + stats["bias"] - stats["mean"] * scale, rtol=1e-5)


def test_nearest_resize_uses_pytorchs_floor_rule():
  x = jnp.arange(3.0).reshape(1, 3, 1, 1)
  # torch: floor(i * 3 / 5) = 0, 0, 1, 1, 2; exact doubling takes i >> 1.
  np.testing.assert_array_equal(np.asarray(nearest_resize(x, (5, 1)))[0, :, 0, 0], [0, 0, 1, 1, 2])
  np.testing.assert_array_equal(np.asarray(nearest_resize(x, (6, 1)))[0, :, 0, 0], [0, 0, 1, 1, 2, 2])


def test_trainable_layers_freeze_the_stem_and_layer1():
  model = rcnn.ResNetBody((1, 1, 1, 1), 4, "frozen", trainable_layers=3)
  x = jnp.ones((1, 32, 32, 3))
  rng = np.random.default_rng(0)  # random variables from numpy: compiling `init` costs seconds
  variables = jax.tree.map(lambda v: jnp.asarray(rng.uniform(0.5, 1.5, v.shape), jnp.float32),
                           jax.eval_shape(model.init, jax.random.key(0), x))
  grads = jax.jit(jax.grad(lambda p: sum(jnp.sum(o) for o in model.apply({**variables, "params": p}, x))))(
      variables["params"])
  norm = lambda tree: float(sum(jnp.sum(jnp.abs(g)) for g in jax.tree.leaves(tree)))
  assert norm(grads["conv1"]) == 0 and norm(grads["layer1_0"]) == 0
  assert norm(grads["layer2_0"]) > 0 and norm(grads["layer4_0"]) > 0


def test_roi_pool_mask_branch_switch():
  model = RCNN(**{**SMALL, "mask_pool": "roi_pool"})
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3))))
  out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 5, 4))), shapes)
  assert out["mask_logits"].shape == (1, 5, 28, 28, 11)


@pytest.mark.slow
def test_full_resnet50_mask_rcnn_imports_from_torchvision():
  """The ResNet-50 Mask R-CNN (frozen BN, torchvision's pretrained configuration) with seeded random weights.

  Needs the 180 MB fixture: /tmp/tvenv/bin/python tests/fixtures/rcnn_heads/make_fixtures.py --full PATH,
  then VJ_RCNN_FULL_FIXTURE=PATH.
  """
  path = os.environ.get("VJ_RCNN_FULL_FIXTURE", "")
  if not os.path.exists(path):
    pytest.skip("set VJ_RCNN_FULL_FIXTURE to the output of make_fixtures.py --full")
  with np.load(path, allow_pickle=False) as f:
    data = {k: f[k] for k in f.files}
  state = {k[len("state/"):]: v for k, v in data.items() if k.startswith("state/")}
  model = models.get("maskrcnn_resnet50_fpn")
  variables = torch_detection.load_rcnn(model, state)
  feats = jax.jit(lambda v, x: model.apply(v, x, method=RCNN.features))(
      variables, jnp.asarray(data["batch"]).transpose(0, 2, 3, 1))
  for i, f in enumerate(feats):
    _close(f, data[f"feature_{i}"].transpose(0, 2, 3, 1))
  _check_heads(model, variables, feats, data)
  results = detect_images(model, variables, list(data["images"]), 128, 128)
  for i, r in enumerate(results):
    np.testing.assert_array_equal(r["labels"], data[f"det_labels_{i}"])
    # 50 float32 conv layers summed in another order than torch's: boxes agree to ~5e-5 relative (measured max
    # 4.7e-3 px on 128-pixel images with random weights), not 1e-3 px as for the small fixture model. Scores agree
    # to ~4e-5, so detections whose torchvision scores are closer than 1e-4 (or tied: torch's sort is not stable)
    # may come in either order; each box is compared with the nearest such detection.
    theirs, scores = data[f"det_boxes_{i}"], data[f"det_scores_{i}"]
    np.testing.assert_allclose(r["scores"], scores, atol=1e-4)
    tied = np.abs(scores[:, None] - scores[None, :]) < 1e-4
    per_row = np.where(tied, np.abs(r["boxes"][:, None] - theirs[None]).max(-1), np.inf).min(1)
    assert per_row.max() < 1e-2
    box_diff = per_row.max()
    score_diff = np.abs(r["scores"] - data[f"det_scores_{i}"]).max()
    print(f"image {i}: {len(r['labels'])} detections, max box diff {box_diff:.2e} px, score diff {score_diff:.2e}")
