"""Classification + localisation (and landmarks) of the one digit card of `digit_localization` (64x64).

    python -m vision_jax.main --config=configs/localization_digits.py --workdir=runs/loc          # class + box
    python -m vision_jax.main --config=configs/localization_digits.py:keypoints --workdir=runs/lmk  # + 4 corners
    python -m vision_jax.main --config=configs/localization_digits.py:smoke --workdir=/tmp/loc      # seconds

Arguments (`:key=value,...`): model (a zoo classifier as backbone), keypoints (landmark head on), box_loss
(smooth_l1 | giou | smooth_l1+giou), steps, batch, lr, augment (input.augment ops), smoke.
Task settings are in `config.localization` (vision_jax/tasks/localization.py).
"""

import ml_collections

from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="simple_cnn", keypoints=False, box_loss="smooth_l1+giou", steps=3000, batch=64,
                          lr=1e-3, augment="translate(x=0.08, y=0.08)", smoke=False)
  config = common.base_config()
  config.task = "localization"
  config.dataset.name = "digit_localization"
  config.model.name = args.model
  config.model.dropout = 0.1
  if args.model == "simple_cnn":  # a narrower trunk: a few minutes of training on a laptop CPU
    config.model.kwargs = ml_collections.ConfigDict({"widths": (16, 32), "hidden_units": 256})
  config.localization = ml_collections.ConfigDict({
      "keypoints": args.keypoints, "box_loss": args.box_loss, "box_weight": 5.0, "giou_weight": 1.0,
      "keypoint_weight": 5.0, "visibility_weight": 0.1, "beta": 0.02, "feature_dim": 256, "pictures": 16})
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 500
  config.input.max_objects = 1
  config.input.preprocess = "to_float"
  config.input.augment = args.augment
  config.input.normalize = "normalize(mean=0.3, std=0.3)"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 200
  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint.every_steps = 1000
  config.checkpoint.best_metric = "localization_accuracy"
  if args.smoke:
    common.apply_smoke(config)
    config.eval_every_steps = 20
  return config
