"""The PyTorch peer of the two-stage bench rows (`vision_jax.bench.rcnn`): torchvision's `FasterRCNN` with the
settings of each row. `SMALL`: the same small ResNet-FPN as `fasterrcnn_small_fpn` (one bottleneck per stage, stem
width 16, batch norm, every layer trainable, a 64-channel FPN with the pooled P6, a 256-wide two-layer box head).
`RESNET50`: `fasterrcnn_resnet50_fpn` as built when weights are loaded (frozen batch norm, 3 trainable layers).

Measured once in a throwaway venv with torch/torchvision (not a dependency of vision_jax):
    /tmp/tvenv/bin/python -m vision_jax.bench.rcnn_torchvision_peer              # small FPN, train + inference
    /tmp/tvenv/bin/python -m vision_jax.bench.rcnn_torchvision_peer --resnet50   # + ResNet-50-FPN at 800x800 b1
(run from the repository root; torchvision 0.29.1 for the figures in the README). Prints images per second.
"""

from __future__ import annotations

import os
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


def small_fpn_model(setting: rcnn.Setting = rcnn.SMALL) -> Any:
  """torchvision `FasterRCNN` of `fasterrcnn_small_fpn`'s architecture with the bench's anchors and settings."""
  # pylint: disable=import-outside-toplevel
  from torchvision.models.detection.backbone_utils import BackboneWithFPN
  from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
  from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
  # pylint: enable=import-outside-toplevel
  backbone = BackboneWithFPN(small_resnet_body(), {f"layer{i}": str(i - 1) for i in range(1, 5)},
                             [4 * SMALL_WIDTH * 2**i for i in range(4)], SMALL_FPN, extra_blocks=LastLevelMaxPool())
  return _faster_rcnn(backbone, setting, num_classes=None, box_head=TwoMLPHead(SMALL_FPN * 49, SMALL_REPRESENTATION),
                      box_predictor=FastRCNNPredictor(SMALL_REPRESENTATION, setting.classes))


def resnet50_fpn_model(setting: rcnn.Setting = rcnn.RESNET50) -> Any:
  """torchvision's `fasterrcnn_resnet50_fpn` (frozen batch norm, 3 trainable layers) with the row's settings."""
  # pylint: disable=import-outside-toplevel
  from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
  from torchvision.models.resnet import resnet50
  from torchvision.ops import misc
  # pylint: enable=import-outside-toplevel
  return _faster_rcnn(_resnet_fpn_extractor(resnet50(norm_layer=misc.FrozenBatchNorm2d), 3), setting,
                      num_classes=setting.classes)


def _faster_rcnn(backbone: Any, s: rcnn.Setting, **kwargs: Any) -> Any:
  # pylint: disable=import-outside-toplevel
  from torchvision.models.detection import FasterRCNN
  from torchvision.models.detection.anchor_utils import AnchorGenerator
  # pylint: enable=import-outside-toplevel
  return FasterRCNN(
      backbone, min_size=s.size, max_size=s.size, image_mean=list(rcnn.IMAGE_MEAN), image_std=list(rcnn.IMAGE_STD),
      rpn_anchor_generator=AnchorGenerator(s.anchor_sizes, s.aspect_ratios), rpn_pre_nms_top_n_train=s.pre_nms,
      rpn_post_nms_top_n_train=s.post_nms, rpn_pre_nms_top_n_test=s.test_pre_nms,
      rpn_post_nms_top_n_test=s.test_post_nms, rpn_batch_size_per_image=s.rpn_batch,
      rpn_positive_fraction=s.rpn_positive, box_batch_size_per_image=s.box_batch,
      box_positive_fraction=s.box_positive, box_detections_per_img=s.detections, **kwargs)


def timings(steps: int, setting: rcnn.Setting = rcnn.SMALL, warmup: int = 3) -> dict[str, Any]:
  """torchvision's train step (loss dict summed, backward, SGD) and eval forward on `rcnn.fixed_batch(setting)`."""
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  images_np, boxes_np, labels_np = rcnn.fixed_batch(setting)
  images = [torch.from_numpy(im).permute(2, 0, 1).contiguous() for im in images_np]
  targets = [{"boxes": torch.from_numpy(b), "labels": torch.from_numpy(l).long()} for b, l in zip(boxes_np, labels_np)]
  model = small_fpn_model(setting) if setting.model == "fasterrcnn_small_fpn" else resnet50_fpn_model(setting)
  opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=rcnn.LEARNING_RATE, momentum=0.9)

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

  return {"train": timing.time_steps(train_step, lambda x: x, warmup, steps),
          "eval": timing.time_steps(eval_step, lambda x: x, warmup, steps),
          "note": f"torch {torch.__version__}, {torch.get_num_threads()} threads"}


if __name__ == "__main__":
  import torchvision  # pylint: disable=import-outside-toplevel
  count = sum(p.numel() for p in small_fpn_model().parameters())
  rcnn.cli(f"torchvision {torchvision.__version__} FasterRCNN (the small model has {count:,} parameters)", "torch")
