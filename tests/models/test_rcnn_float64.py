"""Imported torchvision Mask R-CNNs in float64 (`jax.enable_x64`, float64 networks) against torchvision's own
float64 detections (tests/fixtures/rcnn_heads/make_float64.py, torchvision 0.29.1).

In float32 the two frameworks' convolutions round differently, and on the ResNet-50 model that reaches ~3e-3 px
(torchvision's float32 boxes differ from its float64 ones by as much); in float64 only our box operations' float32
steps remain, so boxes must agree to ~1e-5 px, labels and order exactly.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import models
from vision_jax.interop import torch_detection
from vision_jax.models.detectors.rcnn import RCNN
from vision_jax.models.detectors.rcnn.inference import InferenceConfig, detect

HERE = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "rcnn_heads")
# The fixture's reduced Mask R-CNN without its mask branch (tests/models/test_rcnn_models.py checks that in float32).
SMALL = dict(num_classes=11, stage_sizes=(1, 1, 1, 1), width=8, norm="batch", trainable_layers=5, fpn_channels=32,
             representation_size=64, mask=False)
SMALL_ANCHORS = ((8,), (16,), (32,), (64,), (128,))  # the fixture's AnchorGenerator sizes
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
BOX_ATOL = 1e-4  # px; measured 6.9e-6 (small model) and 2.0e-5 (ResNet-50), float32 box-op rounding
SCORE_ATOL = 1e-6  # the scores' softmax runs in float32 (measured 1.8e-7 and 3.8e-7)


def _load(path):
  with np.load(path, allow_pickle=False) as f:
    return {k: f[k] for k in f.files}


def _detect64(model, variables, images, config=InferenceConfig()):
  """torchvision's eval transform at scale 1 (normalise in float64) and `detect` with float64 networks."""
  size = images.shape[1]
  with jax.enable_x64(True):
    variables = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables)
    batch = jnp.asarray((images.astype(np.float64) - MEAN) / STD, jnp.float64)
    out = detect(model, variables, batch, np.full((len(images), 2), size, np.int32), config)
    assert out["proposals"].dtype == jnp.float64  # the networks ran in float64
    return jax.device_get(out)


def _assert_same_detections(out, i, theirs):
  n = int(out["count"][i])
  np.testing.assert_array_equal(out["labels"][i, :n], theirs[f"det_labels_{i}"])  # same labels in the same order
  np.testing.assert_allclose(out["boxes"][i, :n], theirs[f"det_boxes_{i}"], rtol=0, atol=BOX_ATOL)
  np.testing.assert_allclose(out["scores"][i, :n], theirs[f"det_scores_{i}"], rtol=0, atol=SCORE_ATOL)
  print(f"image {i}: {n} detections, max box diff {np.abs(out['boxes'][i, :n] - theirs[f'det_boxes_{i}']).max():.2e}"
        f" px, max score diff {np.abs(out['scores'][i, :n] - theirs[f'det_scores_{i}']).max():.2e}")  # with -s


def test_small_model_in_float64_gives_torchvisions_float64_detections():
  theirs = _load(os.path.join(HERE, "small_float64.npz"))
  images = _load(os.path.join(HERE, "small_outputs.npz"))["images"]
  state = {k: v for k, v in _load(os.path.join(HERE, "small_state.npz")).items() if "mask" not in k}
  variables = torch_detection.load_rcnn(RCNN(**SMALL), state)
  out = _detect64(RCNN(**SMALL, dtype=jnp.float64), variables, images, InferenceConfig(anchor_sizes=SMALL_ANCHORS))
  for i in range(len(images)):
    _assert_same_detections(out, i, theirs)


@pytest.mark.slow
def test_resnet50_mask_rcnn_in_float64_gives_torchvisions_float64_detections():
  """The ResNet-50-FPN Mask R-CNN (frozen BN) with seeded random weights on two 128x128 images.

  Its weights and images are in the 180 MB file of
  `/tmp/tvenv/bin/python tests/fixtures/rcnn_heads/make_fixtures.py --full PATH` (not committed; run with
  VJ_RCNN_FULL_FIXTURE=PATH); torchvision's float64 detections are the committed full_float64.npz.
  """
  path = os.environ.get("VJ_RCNN_FULL_FIXTURE", "")
  if not os.path.exists(path):
    pytest.skip("needs the ResNet-50 fixture: /tmp/tvenv/bin/python tests/fixtures/rcnn_heads/make_fixtures.py "
                "--full PATH, then VJ_RCNN_FULL_FIXTURE=PATH")
  data = _load(path)
  theirs = _load(os.path.join(HERE, "full_float64.npz"))
  state = {k[len("state/"):]: v for k, v in data.items() if k.startswith("state/")}
  variables = torch_detection.load_rcnn(models.get("maskrcnn_resnet50_fpn"), state)
  out = _detect64(models.get("maskrcnn_resnet50_fpn", dtype=jnp.float64), variables, data["images"])
  for i in range(len(data["images"])):
    _assert_same_detections(out, i, theirs)
    proposals = out["proposals"][i][out["proposal_valid"][i]]
    # decoded in float64 from float64 RPN outputs: measured 1.1e-11 px
    np.testing.assert_allclose(proposals, theirs[f"proposals_{i}"], rtol=0, atol=1e-6)
