"""The PyTorch peer of the two-stage bench row: torchvision's `FasterRCNN` built with the same small ResNet-FPN as
`fasterrcnn_small_fpn` (one bottleneck per stage, stem width 16, batch norm, every layer trainable, a 64-channel
FPN with the pooled P6, a 256-wide two-layer box head) and the settings of `vision_jax.bench.rcnn`.

Measured once in a throwaway venv with torch/torchvision (not a dependency of vision_jax):
    /tmp/tvenv/bin/python -m vision_jax.bench.rcnn_torchvision_peer              # small FPN, train + inference
    /tmp/tvenv/bin/python -m vision_jax.bench.rcnn_torchvision_peer --resnet50   # + ResNet-50-FPN at 800x800 b1
(run from the repository root; torchvision 0.29.1 for the figures in the README). Prints images per second.
"""

from __future__ import annotations

import os
import time
from typing import Any

from vision_jax.bench import rcnn, timing

SMALL_WIDTH, SMALL_FPN, SMALL_REPRESENTATION = 16, 64, 256


def small_resnet_body(width: int = SMALL_WIDTH) -> Any:
  """torchvision's ResNet layout (stem, maxpool, layer1..4 of one v1.5 bottleneck each), batch norm."""
  # pylint: disable=import-outside-toplevel
  from torch import nn
  from torchvision.models.resnet import Bottleneck
  # pylint: enable=import-outside-toplevel
  body = nn.Module()
  body.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
  body.bn1 = nn.BatchNorm2d(width)
  body.relu = nn.ReLU(inplace=True)
  body.maxpool = nn.MaxPool2d(3, 2, 1)
  channels = width
  for stage in range(4):
    planes = width * 2**stage
    shortcut = nn.Sequential(nn.Conv2d(channels, planes * 4, 1, 1 if stage == 0 else 2, bias=False),
                             nn.BatchNorm2d(planes * 4))
    setattr(body, f"layer{stage + 1}", nn.Sequential(Bottleneck(channels, planes, 1 if stage == 0 else 2, shortcut)))
    channels = planes * 4
  return body


def small_fpn_model() -> Any:
  """torchvision `FasterRCNN` of `fasterrcnn_small_fpn`'s architecture with the bench's anchors and settings."""
  # pylint: disable=import-outside-toplevel
  from torchvision.models.detection import FasterRCNN
  from torchvision.models.detection.anchor_utils import AnchorGenerator
  from torchvision.models.detection.backbone_utils import BackboneWithFPN
  from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
  from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
  # pylint: enable=import-outside-toplevel
  backbone = BackboneWithFPN(small_resnet_body(), {f"layer{i}": str(i - 1) for i in range(1, 5)},
                             [4 * SMALL_WIDTH * 2**i for i in range(4)], SMALL_FPN, extra_blocks=LastLevelMaxPool())
  train, test = rcnn.TRAIN_SETTINGS, rcnn.TEST_SETTINGS
  return FasterRCNN(
      backbone, num_classes=None, min_size=rcnn.SIZE, max_size=rcnn.SIZE, image_mean=list(rcnn.IMAGE_MEAN),
      image_std=list(rcnn.IMAGE_STD), rpn_anchor_generator=AnchorGenerator(rcnn.ANCHOR_SIZES, rcnn.ASPECT_RATIOS),
      rpn_pre_nms_top_n_train=train["pre_nms"], rpn_post_nms_top_n_train=train["post_nms"],
      rpn_pre_nms_top_n_test=test["pre_nms"], rpn_post_nms_top_n_test=test["post_nms"],
      rpn_batch_size_per_image=train["rpn_batch"], rpn_positive_fraction=train["rpn_positive"],
      box_batch_size_per_image=train["box_batch"], box_positive_fraction=train["box_positive"],
      box_detections_per_img=test["detections"],
      box_head=TwoMLPHead(SMALL_FPN * 49, SMALL_REPRESENTATION),
      box_predictor=FastRCNNPredictor(SMALL_REPRESENTATION, rcnn.CLASSES))


def small_fpn_timings(steps: int) -> dict[str, Any]:
  """torchvision's train step (loss dict summed, backward, SGD) and eval forward on `rcnn.fixed_batch()`."""
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  images_np, boxes_np, labels_np = rcnn.fixed_batch()
  images = [torch.from_numpy(im).permute(2, 0, 1).contiguous() for im in images_np]
  targets = [{"boxes": torch.from_numpy(b), "labels": torch.from_numpy(l).long()} for b, l in zip(boxes_np, labels_np)]
  model = small_fpn_model()
  opt = torch.optim.SGD(model.parameters(), lr=rcnn.LEARNING_RATE, momentum=0.9)

  def train_step():
    model.train()
    opt.zero_grad(set_to_none=True)
    loss = sum(model(images, targets).values())
    loss.backward()
    opt.step()
    return loss

  def eval_step():
    model.eval()
    with torch.no_grad():
      return model(images)

  return timing.torch_timings(torch, train_step, eval_step, steps)


def resnet50_inference(steps: int = 3, size: int = 800) -> dict[str, float]:
  """torchvision's `fasterrcnn_resnet50_fpn` (weights=None; frozen BN as when weights are loaded) on one image."""
  # pylint: disable=import-outside-toplevel
  import torch
  from torchvision.models.detection import FasterRCNN
  from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
  from torchvision.models.resnet import resnet50
  from torchvision.ops import misc
  # pylint: enable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  model = FasterRCNN(_resnet_fpn_extractor(resnet50(norm_layer=misc.FrozenBatchNorm2d), 3), num_classes=91,
                     min_size=size, max_size=size).eval()
  image = torch.rand(3, size, size)

  def step():
    with torch.no_grad():
      return model([image])

  t = time.perf_counter()
  result = timing.time_steps(step, lambda x: x, 1, steps)
  result["total_sec"] = time.perf_counter() - t
  return result


if __name__ == "__main__":
  import torchvision  # pylint: disable=import-outside-toplevel
  count = sum(p.numel() for p in small_fpn_model().parameters())
  rcnn.cli(f"torchvision {torchvision.__version__} FasterRCNN ({count:,} parameters)", small_fpn_timings,
           resnet50_inference)
