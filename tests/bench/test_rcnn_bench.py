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
