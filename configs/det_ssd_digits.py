"""A small SSD on the embedded digit scenes (96x96, 1..6 digits): four maps (12, 6, 3, 1), 760 default boxes.

    python -m vision_jax.main --config=configs/det_ssd_digits.py --workdir=runs/det_ssd_digits
    python -m vision_jax.main --config=configs/det_ssd_digits.py:smoke --workdir=/tmp/det_ssd     # seconds

Arguments (`:key=value,...`): steps, batch, lr, width, smoke.
"""

from vision_jax.configs import common
from vision_jax.tasks import detectors


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=3000, batch=32, lr=2e-3, width=32, smoke=False)
  config = common.base_config()
  config.task = "detection"
  config.dataset.name = "digit_scenes"
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 100
  config.input.max_objects = 6
  config.input.preprocess = "to_float"
  config.detector = detectors.default_config("ssd", width=args.width)
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 200
  config.log_every_steps = 100
  config.eval_every_steps = max(args.steps // 2, 1)
  config.checkpoint.every_steps = 300  # resumable: shared machines kill processes
  if args.smoke:
    common.apply_smoke(config)
    config.input.batch_size = 8
    config.input.eval_batch_size = 500
  return config
