"""Bench row of issue 16's model: `fasterrcnn_resnet50_fpn` train step and inference at 800x800, batch 1
(`vision_jax.bench.rcnn.RESNET50`; minutes on 2 cores, so not part of the default `rcnn` row).

    python -m vision_jax.bench.rcnn --only_resnet50                                   # ours
    /tmp/tvenv/bin/python -m vision_jax.bench.rcnn_torchvision_peer --only_resnet50   # torchvision
"""

from __future__ import annotations

from typing import Any

from vision_jax.bench import rcnn


def measure(framework: str, steps: int) -> dict[str, Any]:
  """The `RESNET50` row (`bench.families` interface): framework "ours" or "torch", steps timed (3 when 0)."""
  return rcnn.measure_setting(framework, steps or 3, rcnn.RESNET50)
