"""Faster R-CNN / Mask R-CNN (small ResNet, `rcnn.SMALL`) on the embedded digit scenes (96x96, 1..6 digits).

    python -m vision_jax.main --config=configs/det_rcnn_digits.py:variant=fpn --workdir=runs/rcnn_fpn
    python -m vision_jax.main --config=configs/det_rcnn_digits.py:variant=mask,smoke --workdir=/tmp/rcnn  # seconds

Variants: faster (one stride-16 C4 level, no FPN), fpn (Faster R-CNN + FPN), mask (Mask R-CNN, RoIAlign mask
branch), mask_roipool (the same with RoIPool). Anchors: sizes 12..192 on P2..P6 (12, 24, 48 on C4), ratios
0.5, 1, 2; RPN top-n 600/300 in training, 300/100 in testing; 64 sampled RoIs per image (8 for the mask branch).

Arguments (`:key=value,...`): variant, steps, batch, lr, smoke.
"""

from vision_jax.configs import common
from vision_jax.tasks import two_stage


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, variant="fpn", steps=3000, batch=8, lr=1e-3, smoke=False)
  config = common.base_config()
  config.task = "two_stage"
  config.dataset.name = "digit_scenes"
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 100
  config.input.max_objects = 6
  config.input.preprocess = "to_float"
  config.rcnn = two_stage.default_config(args.variant)
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.optimizer.grad_clip_norm = 10.0
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = min(200, max(args.steps // 10, 1))
  config.log_every_steps = 50
  config.eval_every_steps = max(args.steps // 2, 1)
  config.checkpoint.every_steps = 300  # resumable: shared machines kill processes
  if args.smoke:
    common.apply_smoke(config)
    config.input.batch_size = 4
    config.input.eval_batch_size = 500  # generated splits cannot be sliced: the smoke run evaluates all 2,000
    config.rcnn.rpn_pre_nms_test, config.rcnn.rpn_post_nms_test, config.rcnn.detections_per_img = 100, 50, 10
  return config
