"""A tiny grid detector on the embedded digit scenes (test-only task `toy_detection`, tests/tasks/toy_tasks.py),
scored by COCO box mAP over its padded top-D predictions.

    PYTHONPATH=. python -m vision_jax.main --config=tests/tasks/configs/toy_detection.py:smoke --workdir=/tmp/det

Arguments (`:key=value,...`): steps, batch, lr, smoke.
"""

import ml_collections

import tests.tasks.toy_tasks  # noqa: F401  (registers the toy tasks)
from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=2000, batch=32, lr=3e-3, smoke=False)
  config = common.base_config()
  config.task = "toy_detection"
  config.dataset.name = "digit_scenes"
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 500
  config.input.preprocess = "to_float"
  config.input.max_objects = 6
  config.detection = ml_collections.ConfigDict({"max_detections": 10, "score_threshold": 0.05, "anchor": 32.0})
  config.optimizer.learning_rate = args.lr
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint.every_steps = 500
  if args.smoke:
    common.apply_smoke(config)
  return config
