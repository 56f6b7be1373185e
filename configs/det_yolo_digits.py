"""YOLO v1, v2 or v3 on the embedded digit scenes (96x96, 1..6 digits) with a small darknet-style backbone.

    python -m vision_jax.main --config=configs/det_yolo_digits.py:version=3 --workdir=runs/det_yolov3_digits
    python -m vision_jax.main --config=configs/det_yolo_digits.py:version=1,smoke --workdir=/tmp/det_yolo  # seconds

  * version=1: a 6x6 grid, 2 boxes per cell (darknet `detection` layer loss) with a convolutional head (a 3x3
    conv, then a 1x1 conv to each cell's 2 x 5 + 10 outputs). The paper's FC head (`head=fc`) and darknet
    yolo.cfg's locally connected + FC head (`head=local`) learn the box but hardly the class from scratch
    (class loss near chance after 400 steps; README, detection section).
  * version=2: a 6x6 grid (stride 16) with the stride-8 passthrough, 5 k-means anchors (`region` layer loss).
  * version=3: strides 16, 8, 4 (6x6, 12x12, 24x24 grids: darknet's 32, 16, 8 on 416x416 inputs give 13, 26, 52;
    on 96x96 they would give 3, 6, 12), 9 k-means anchors, 3 per scale (`yolo` layer loss).
The k-means anchors (1 - IoU distance) come from the training boxes at start-up.

Arguments (`:key=value,...`): version, steps, batch, lr, width, head (v1: conv | fc | local),
box_loss (v3: darknet | giou | ciou), smoke.
"""

from vision_jax.configs import common, det_ssd_digits
from vision_jax.errors import ConfigError
from vision_jax.tasks import detectors


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, version=3, steps=3000, batch=32, lr=2e-3, width=16, head="conv", box_loss="darknet",
                          smoke=False)
  if args.version not in (1, 2, 3):
    raise ConfigError(f"version={args.version}; choose 1, 2 or 3")
  # det_ssd_digits' data and schedule, with a YOLO detector and gradient clipping (its losses are sums).
  config = det_ssd_digits.get_config(f"steps={args.steps},batch={args.batch},lr={args.lr},smoke={args.smoke}")
  config.detector = detectors.default_config(f"yolo_v{args.version}", width=args.width, v3_strides="16,8,4")
  config.detector.v1_head = args.head
  config.detector.v3_box_loss = args.box_loss
  if args.head != "conv":  # the paper's FC head: 64 channels into the FC layers, dropout 0.5
    config.detector.update({"v1_head_channels": 64, "v1_dropout": 0.5})
  config.optimizer.grad_clip_norm = 10.0
  return config
