"""Faster R-CNN ResNet-50-FPN (torchvision's `fasterrcnn_resnet50_fpn` sizes) on PASCAL VOC 2007 through TFDS
(prepare `voc/2007` first). Build-tested only: no run of it has been measured here.

    python -m vision_jax.main --config=configs/det_rcnn_voc.py --workdir=runs/rcnn_voc
    python -m vision_jax.main --config=configs/det_rcnn_voc.py:smoke --workdir=/tmp/rcnn_voc   # minutes on a CPU

torchvision's settings where static shapes allow: letterboxed 800x800 inputs (torchvision resizes the short side
to 800, long side at most 1333), ImageNet normalisation, frozen batch norm with the stem and layer1 frozen,
anchors 32..512 on P2..P6 with ratios 0.5, 1, 2, RPN top-n 2000/2000 in training and 1000/1000 in testing,
512 sampled RoIs per image, 100 detections; SGD momentum 0.9, lr 0.02 for batch 16, weight decay 1e-4. Start
from ImageNet ResNet-50 weights (`transfer.init_from_torch`) for a useful accuracy.

Arguments (`:key=value,...`): variant (fpn or faster), steps, batch, lr, smoke.
"""

import ml_collections

from vision_jax.configs import common, imagenet2012
from vision_jax.tasks import two_stage


def resnet50_rcnn(variant: str) -> ml_collections.ConfigDict:
  """The `rcnn` section with torchvision's ResNet-50-FPN detector sizes."""
  return two_stage.default_config(
      variant, preset="resnet50",
      anchor_sizes=((32,), (64,), (128,), (256,), (512,)) if variant != "faster" else ((128, 256, 512),),
      rpn_pre_nms_train=2000, rpn_post_nms_train=2000, rpn_pre_nms_test=1000, rpn_post_nms_test=1000,
      box_batch_size=512, mask_rois_per_image=128, detections_per_img=100)


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, variant="fpn", steps=30000, batch=16, lr=0.02, smoke=False)
  config = common.base_config()
  config.task = "two_stage"
  config.dataset.name = "voc/2007"
  config.dataset.train_split = "train+validation"
  config.dataset.eval_split = "test"
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 8
  config.input.image_size = 800
  config.input.resize = "letterbox"
  config.input.max_objects = 48
  config.input.preprocess = "to_float"
  config.input.normalize = f"normalize(mean={imagenet2012.MEAN_RGB}, std={imagenet2012.STD_RGB})"
  config.rcnn = resnet50_rcnn(args.variant)
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = args.lr
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 1e-4
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 1000
  config.log_every_steps = 100
  config.eval_every_steps = 10000
  config.checkpoint.every_steps = 2000
  if args.smoke:
    common.apply_smoke(config)
    config.input.batch_size = 1
    config.input.eval_batch_size = 1
    config.dataset.eval_split = "test[:2]"
  return config
