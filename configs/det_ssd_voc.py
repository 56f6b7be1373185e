"""SSD300-VGG16 on PASCAL VOC 2007 through TFDS (prepare `voc/2007` first), at the paper's 300x300 input.

    python -m vision_jax.main --config=configs/det_ssd_voc.py --workdir=runs/ssd300_voc
    python -m vision_jax.main --config=configs/det_ssd_voc.py:smoke --workdir=/tmp/ssd300_voc   # minutes on a CPU

Recipe (Liu et al. 2016): SGD momentum 0.9, weight decay 5e-4, lr 1e-3 (warm-up, cosine), batch 32, 120k steps,
horizontal flips and colour jitter; letterboxed 300x300 inputs normalized with ImageNet statistics. Start from
ImageNet VGG16 weights with `transfer.init_from_torch` for the paper's accuracy.

Arguments (`:key=value,...`): steps, batch, lr, smoke.
"""

from vision_jax.configs import common, imagenet2012
from vision_jax.tasks import detectors


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=120000, batch=32, lr=1e-3, smoke=False)
  config = common.base_config()
  config.task = "detection"
  config.dataset.name = "voc/2007"
  config.dataset.train_split = "train+validation"
  config.dataset.eval_split = "test"
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 32
  config.input.image_size = 300
  config.input.resize = "letterbox"
  config.input.max_objects = 48
  config.input.preprocess = "to_float"
  config.input.augment = "flip_lr|brightness(factor=0.2)|contrast(factor=0.2)"
  config.input.normalize = f"normalize(mean={imagenet2012.MEAN_RGB}, std={imagenet2012.STD_RGB})"
  config.detector = detectors.default_config("ssd", backbone="vgg16", candidates_per_class=400, max_detections=200)
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = args.lr
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 1000
  config.log_every_steps = 100
  config.eval_every_steps = 10000
  config.checkpoint.every_steps = 5000
  if args.smoke:
    common.apply_smoke(config)
    config.input.batch_size = 2
    config.input.eval_batch_size = 2
  return config
