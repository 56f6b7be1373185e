"""Two-stage detectors in torchvision's layout: ResNet-FPN Faster R-CNN and Mask R-CNN (registered presets)."""

import functools

from vision_jax.models.detectors.rcnn.backbone import FPN, FrozenBatchNorm, ResNetBody
from vision_jax.models.detectors.rcnn.model import RCNN
from vision_jax.models.registry import register_factory

# The digits preset: a one-block-per-stage ResNet of width 16 (outputs 64-512 channels), a 64-channel FPN.
SMALL = dict(num_classes=11, stage_sizes=(1, 1, 1, 1), width=16, norm="batch", trainable_layers=5,
             fpn_channels=64, representation_size=256, mask_layers=(64, 64, 64, 64), mask_dim_reduced=64)

# Anchor sizes per level (P2..P6) for 64x64 digit scenes (torchvision's default is 32..512 for 800-pixel images).
SMALL_ANCHOR_SIZES = ((8,), (16,), (32,), (64,), (128,))

NAMES = ("fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn", "fasterrcnn_small_fpn")
register_factory("fasterrcnn_resnet50_fpn", functools.partial(RCNN))
register_factory("maskrcnn_resnet50_fpn", functools.partial(RCNN, mask=True))
register_factory("fasterrcnn_small_fpn", functools.partial(RCNN, **SMALL))

__all__ = ["FPN", "FrozenBatchNorm", "NAMES", "RCNN", "ResNetBody", "SMALL", "SMALL_ANCHOR_SIZES"]
