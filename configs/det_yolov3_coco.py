"""YOLO v3 (Darknet-53) on COCO 2017 through TFDS (prepare `coco/2017` first), at the paper's 416x416 input.

    python -m vision_jax.main --config=configs/det_yolov3_coco.py --workdir=runs/yolov3_coco
    python -m vision_jax.main --config=configs/det_yolov3_coco.py:smoke --workdir=/tmp/yolov3_coco  # minutes on a CPU

Recipe (darknet yolov3.cfg): darknet's 9 COCO anchors, ignore threshold 0.7 as in the cfg (0.5 in the paper's
text), SGD momentum 0.9, weight decay 5e-4, lr 1e-3 with warm-up, batch 64, 500k steps, letterboxed 416x416
inputs in [0, 1], flips and colour jitter.

Arguments (`:key=value,...`): steps, batch, lr, ignore, smoke.
"""

from vision_jax.configs import common, det_ssd_voc
from vision_jax.models.detectors import yolo
from vision_jax.tasks import detectors


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=500000, batch=64, lr=1e-3, ignore=0.7, smoke=False)
  # det_ssd_voc's optimizer, schedule and letterboxed inputs, on COCO at 416 with YOLO v3 and [0, 1] inputs.
  config = det_ssd_voc.get_config(f"steps={args.steps},batch={args.batch},lr={args.lr},smoke={args.smoke}")
  config.dataset.name = "coco/2017"
  config.dataset.train_split = "train"
  config.dataset.eval_split = "validation"
  config.input.image_size = 416
  config.input.max_objects = 100
  config.input.augment = "flip_lr|brightness(factor=0.2)|saturation(factor=0.5)"
  config.input.normalize = ""
  config.detector = detectors.default_config("yolo_v3", backbone="darknet53", anchors=yolo.V3_COCO_ANCHORS,
                                             ignore_thresh=args.ignore, candidates_per_class=200, max_detections=100)
  config.optimizer.grad_clip_norm = 10.0
  if not args.smoke:
    config.eval_every_steps = 20000
  return config
