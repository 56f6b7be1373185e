"""The PyTorch peer of the detection bench row: SSD300-VGG16 and its multibox loss written by hand in torch, the
same architecture and loss semantics as `vision_jax.models.detectors.ssd.SSD300VGG16` and
`vision_jax.losses.detection.ssd_loss` (torchvision's layout; not torchvision's code). Imported only by the bench
worker for framework "torch".
"""

from __future__ import annotations

import torch
import torch.nn as tnn
import torch.nn.functional as F

NUM_ANCHORS = (4, 6, 6, 6, 4, 4)


class SSD300(tnn.Module):
  """VGG16 trunk (conv4_3 L2-normalised), fc6/fc7, four extra blocks, 3x3 class and box heads on six maps."""

  def __init__(self, num_classes: int):
    super().__init__()
    layers, c = [], 3
    for s, widths in enumerate(((64, 64), (128, 128), (256, 256, 256), (512, 512, 512))):
      for f in widths:
        layers += [tnn.Conv2d(c, f, 3, padding=1), tnn.ReLU(inplace=True)]
        c = f
      if s < 3:
        layers.append(tnn.MaxPool2d(2, 2, ceil_mode=(s == 2)))
    self.conv4 = tnn.Sequential(*layers)
    self.scale = tnn.Parameter(torch.full((512,), 20.0))
    block5 = [tnn.MaxPool2d(2, 2)]
    for _ in range(3):
      block5 += [tnn.Conv2d(512, 512, 3, padding=1), tnn.ReLU(inplace=True)]
    block5 += [tnn.MaxPool2d(3, 1, 1), tnn.Conv2d(512, 1024, 3, padding=6, dilation=6), tnn.ReLU(inplace=True),
               tnn.Conv2d(1024, 1024, 1), tnn.ReLU(inplace=True)]
    self.fc7 = tnn.Sequential(*block5)
    extras, c = [], 1024
    for mid, out, stride, pad in ((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0), (128, 256, 1, 0)):
      extras.append(tnn.Sequential(tnn.Conv2d(c, mid, 1), tnn.ReLU(inplace=True),
                                   tnn.Conv2d(mid, out, 3, stride=stride, padding=pad), tnn.ReLU(inplace=True)))
      c = out
    self.extras = tnn.ModuleList(extras)
    channels = (512, 1024, 512, 256, 256, 256)
    self.cls = tnn.ModuleList(tnn.Conv2d(c, a * num_classes, 3, padding=1) for c, a in zip(channels, NUM_ANCHORS))
    self.box = tnn.ModuleList(tnn.Conv2d(c, a * 4, 3, padding=1) for c, a in zip(channels, NUM_ANCHORS))
    self.num_classes = num_classes

  def forward(self, x):
    x = self.conv4(x)
    maps = [self.scale.view(1, -1, 1, 1) * F.normalize(x)]
    x = self.fc7(x)
    maps.append(x)
    for block in self.extras:
      x = block(x)
      maps.append(x)
    n = x.shape[0]
    logits = [h(m).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes) for h, m in zip(self.cls, maps)]
    boxes = [h(m).permute(0, 2, 3, 1).reshape(n, -1, 4) for h, m in zip(self.box, maps)]
    return torch.cat(logits, 1), torch.cat(boxes, 1)


def _iou(a, b):
  area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
  area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  lt = torch.max(a[:, None, :2], b[None, :, :2])
  rb = torch.min(a[:, None, 2:], b[None, :, 2:])
  inter = (rb - lt).clamp(min=0).prod(-1)
  return inter / (area_a[:, None] + area_b[None] - inter)


def _encode(anchors, boxes):
  aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
  ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
  bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
  bx, by = boxes[:, 0] + 0.5 * bw, boxes[:, 1] + 0.5 * bh
  return torch.stack([10 * (bx - ax) / aw, 10 * (by - ay) / ah, 5 * torch.log(bw / aw), 5 * torch.log(bh / ah)], 1)


def ssd_loss(logits, regression, anchors, gt_boxes, gt_labels):
  """Best-prior-per-truth matching at 0.5, (10, 10, 5, 5) coding, smooth-L1 + CE with 3:1 hard negatives, over
  the positives (gt_labels in 1..K-1; every truth row real)."""
  box_loss, cls_targets, positives = 0.0, [], 0
  for i in range(logits.shape[0]):
    iou = _iou(gt_boxes[i], anchors)
    values, matches = iou.max(0)
    matches[values < 0.5] = -1
    matches[iou.argmax(1)] = torch.arange(len(gt_boxes[i]))
    fg = torch.where(matches >= 0)[0]
    positives += len(fg)
    target = _encode(anchors[fg], gt_boxes[i][matches[fg]])
    box_loss = box_loss + F.smooth_l1_loss(regression[i, fg], target, reduction="sum")
    labels = torch.zeros(len(anchors), dtype=torch.int64)
    labels[fg] = gt_labels[i][matches[fg]]
    cls_targets.append(labels)
  cls_targets = torch.stack(cls_targets)
  cls_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), cls_targets.reshape(-1),
                             reduction="none").view(cls_targets.shape)
  foreground = cls_targets > 0
  negative = cls_loss.clone()
  negative[foreground] = -float("inf")
  _, order = negative.sort(1, descending=True)
  background = order.sort(1)[1] < 3 * foreground.sum(1, keepdim=True)
  n = max(1, positives)
  return box_loss / n + (cls_loss[foreground].sum() + cls_loss[background].sum()) / n
