"""Classification + localisation (and landmarks) of the one digit card of `digit_localization` (64x64).

Defaults: a conv4 trunk (widths 16-32-64-64) regresses the box (and corners); the class comes from a second conv4
(32-64-128) on a 32x32 crop around the box (`localization.crop_model`), which learns the class several times
faster than a class head on the trunk's features (IoU >= 0.5 and right class 0.956 after 700 steps, against
0.41 for the trunk's own head).

    python -m vision_jax.main --config=configs/localization_digits.py --workdir=runs/loc          # class + box
    python -m vision_jax.main --config=configs/localization_digits.py:keypoints --workdir=runs/lmk  # + 4 corners
    python -m vision_jax.main --config=configs/localization_digits.py:smoke --workdir=/tmp/loc      # seconds

Arguments (`:key=value,...`): model (a zoo classifier as backbone), widths (its channels, e.g. 16-32-64-64 for
conv4, 16-32 for simple_cnn; "" keeps the model's own), keypoints (landmark head on), box_loss
(smooth_l1 | giou | smooth_l1+giou), steps, batch, lr, augment (input.augment ops), label_smoothing, crop (a zoo
classifier that reads the class from a crop around the box, e.g. conv4; "" for a class head on the backbone),
crop_widths (its channels), smoke.
Task settings are in `config.localization` (vision_jax/tasks/localization.py).
"""

import ml_collections

from vision_jax.configs import common


# Narrower trunks than the models' own: a few minutes of training on a laptop CPU.
NARROW_WIDTHS = {"conv4": (16, 32, 64, 64), "simple_cnn": (16, 32)}


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="conv4", widths="", keypoints=False, box_loss="smooth_l1+giou", steps=1500,
                          batch=64, lr=2e-3, augment="translate(x=0.08, y=0.08)", label_smoothing=0.0, crop="conv4",
                          crop_widths="32-64-128", smoke=False)
  config = common.base_config()
  config.task = "localization"
  config.dataset.name = "digit_localization"
  config.model.name = args.model
  widths = (common.parse_sizes("widths", args.widths, "the backbone's stage widths", "16-32-64-64")
            or NARROW_WIDTHS.get(args.model, ()))
  if args.model == "simple_cnn":
    config.model.dropout = 0.1
    config.model.kwargs = ml_collections.ConfigDict({"widths": widths, "hidden_units": 256})
  elif widths:
    config.model.kwargs = ml_collections.ConfigDict({"widths": widths})
  config.localization = ml_collections.ConfigDict({
      "keypoints": args.keypoints, "box_loss": args.box_loss, "box_weight": 5.0, "giou_weight": 1.0,
      "keypoint_weight": 5.0, "visibility_weight": 0.1, "beta": 0.02, "feature_dim": 256, "pictures": 16,
      "label_smoothing": args.label_smoothing, "crop_model": args.crop, "crop_size": 32, "crop_margin": 1.3,
      "crop_jitter": 0.1})
  if args.crop:
    config.localization.crop_kwargs = ml_collections.ConfigDict(
        {"widths": common.parse_sizes("crop_widths", args.crop_widths, "the crop classifier's widths", "32-64-128")})
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
  config.eval_every_steps = 500
  config.checkpoint.every_steps = 500
  config.checkpoint.best_metric = "localization_accuracy"
  if args.smoke:
    common.apply_smoke(config)
    config.eval_every_steps = 20
  return config
