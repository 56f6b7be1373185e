"""The two-stage bench row compares equal architectures: ours has torchvision's parameter count for the peer
`FasterRCNN` (1,636,694, printed by `python -m vision_jax.bench.rcnn_torchvision_peer` with torchvision 0.29.1;
recomputed here when torchvision is installed)."""

import numpy as np
import pytest

from vision_jax import models
from vision_jax.bench import rcnn

TORCHVISION_PEER_PARAMETERS = 1_636_694


def test_small_fpn_has_the_peers_parameter_count():
  counts = models.count_params(models.get("fasterrcnn_small_fpn"), (rcnn.SIZE, rcnn.SIZE, 3))
  assert counts["params"] == TORCHVISION_PEER_PARAMETERS


def test_torchvision_peer_parameter_count():
  pytest.importorskip("torchvision")
  from vision_jax.bench import rcnn_torchvision_peer  # pylint: disable=import-outside-toplevel
  assert sum(p.numel() for p in rcnn_torchvision_peer.small_fpn_model().parameters()) == TORCHVISION_PEER_PARAMETERS


def test_fixed_batch_boxes_lie_inside_the_images():
  images, boxes, labels = rcnn.fixed_batch()
  assert images.shape == (rcnn.BATCH, rcnn.SIZE, rcnn.SIZE, 3) and labels.min() >= 1 and labels.max() < rcnn.CLASSES
  widths = boxes[..., 2:] - boxes[..., :2]
  assert np.all(boxes >= 0) and np.all(boxes <= rcnn.SIZE) and np.all(widths >= 10) and np.all(widths <= 40)


def test_resnet50_row_batch_and_torchvision_defaults():
  images, boxes, labels = rcnn.fixed_batch(rcnn.RESNET50)
  assert images.shape == (1, 800, 800, 3) and boxes.shape == (1, 3, 4)
  sides = boxes[..., 2:] - boxes[..., :2]
  assert np.all(boxes >= 0) and np.all(boxes <= 800) and np.all(sides >= 64) and np.all(sides <= 320)
  # torchvision 0.29.1's fasterrcnn_resnet50_fpn defaults (rpn/roi_heads constructor arguments)
  s = rcnn.RESNET50
  assert (s.pre_nms, s.post_nms, s.test_pre_nms, s.test_post_nms) == (2000, 2000, 1000, 1000)
  assert (s.rpn_batch, s.rpn_positive, s.box_batch, s.box_positive, s.detections) == (256, 0.5, 512, 0.25, 100)
  assert s.anchor_sizes == ((32,), (64,), (128,), (256,), (512,)) and s.classes == 91


def test_torchvision_resnet50_peer_equals_its_preset():
  pytest.importorskip("torchvision")
  import torchvision  # pylint: disable=import-outside-toplevel
  from vision_jax.bench import rcnn_torchvision_peer  # pylint: disable=import-outside-toplevel
  peer = rcnn_torchvision_peer.resnet50_fpn_model()
  preset = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
  assert (peer.rpn._pre_nms_top_n, peer.rpn._post_nms_top_n) == (preset.rpn._pre_nms_top_n, preset.rpn._post_nms_top_n)
  assert peer.roi_heads.detections_per_img == preset.roi_heads.detections_per_img
  assert sum(p.numel() for p in peer.parameters()) == 41_755_286  # frozen batch norm (tests/models/test_rcnn_models)
