"""R-CNN or Fast R-CNN on selective-search proposals of the embedded digit scenes (96x96, 1..6 digits).

    python -m vision_jax.data.proposal_cache --split=test --cache_dir=DIR      # optional: fill the cache first,
    python -m vision_jax.data.proposal_cache --split=train --cache_dir=DIR     # 2 processes, timed apart
    python -m vision_jax.main --config=configs/det_rcnn_classic_digits.py:kind=fast_rcnn,proposal_dir=DIR \\
        --workdir=runs/det_fast_rcnn
    python -m vision_jax.main --config=configs/det_rcnn_classic_digits.py:kind=rcnn,smoke --workdir=/tmp/rcnn

Arguments (`:key=value,...`): kind (rcnn | fast_rcnn), steps, batch, lr, width, mode (selective search:
single | fast | quality), proposal_dir, train_images, eval_images (0: all), smoke. The smoke run computes the
proposals of its images as it meets them (32 per image) and evaluates the first 16 test scenes only.
"""

from vision_jax.configs import common
from vision_jax.tasks import region_cnn


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, kind="fast_rcnn", steps=1500, batch=8, lr=1e-3, width=0, mode="fast",
                          proposal_dir="", train_images=0, eval_images=0, smoke=False)
  config = common.base_config()
  config.task = "region_cnn"
  config.dataset.name = "digit_scenes"
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 20 if args.kind == "rcnn" else 50
  config.input.max_objects = 6
  config.input.preprocess = "to_float"
  config.region_cnn = region_cnn.default_config(args.kind)
  if args.width > 0:
    config.region_cnn.width = args.width
  config.region_cnn.mode = args.mode
  config.region_cnn.proposal_dir = args.proposal_dir
  config.region_cnn.train_images = args.train_images
  config.region_cnn.eval_images = args.eval_images
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 100
  config.log_every_steps = 100
  config.eval_every_steps = args.steps
  config.checkpoint.every_steps = 500  # resumable: shared machines kill processes
  if args.smoke:
    common.apply_smoke(config)
    config.input.batch_size = 4
    config.input.eval_batch_size = 50
    config.region_cnn.prebuild = False
    config.region_cnn.num_proposals = 32
    config.region_cnn.eval_images = args.eval_images or 16
  return config
