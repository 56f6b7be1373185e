"""U-Net on the `digit_scenes` semantic masks (11 classes: background and the ten digits), 96x96 canvases.

    python -m vision_jax.main --config=configs/seg_unet.py --workdir=runs/seg_unet_same       # same-padded form
    python -m vision_jax.main --config=configs/seg_unet.py:form=valid --workdir=runs/seg_unet_valid
    python -m vision_jax.main --config=configs/seg_unet.py:smoke                               # seconds

Arguments (`:key=value,...`): form (same: padded convs with batch norm, `unet_small_same`; valid: the paper's
unpadded convs with centre-cropped skips, the 96x96 canvas mirror-padded to a 188x188 tile, `unet_small_valid`),
depth, width, upsampling (transposed | resize), steps, batch, lr, dice (weight of the Dice loss added to the
cross-entropy), size (canvas side fed to the model, 96 or smaller), smoke. Both forms are depth 3, width 16 by
default (small enough for a CPU).
"""

import ml_collections

from vision_jax.configs import common
from vision_jax.errors import ConfigError

FORMS = {"same": "unet_small_same", "valid": "unet_small_valid"}


def digit_scenes_config(model: str, steps: int, batch: int, lr: float, dice: float, size: int, smoke: bool):
  """The digit_scenes segmentation recipe shared by the U-Net and FCN configs: Adam, warm-up + cosine,
  cross-entropy (+ `dice` x Dice), evaluation every 500 steps on the 2,000 test scenes; `size` < 96 shrinks the
  canvases and their masks on the host (letterbox of a square: a plain resize, masks nearest)."""
  config = common.base_config()
  config.task = "segmentation"
  config.dataset.name = "digit_scenes"
  config.model.name = model
  config.num_train_steps = steps
  config.input.batch_size = batch
  config.input.eval_batch_size = 100
  if size != 96:
    config.input.image_size = size
    config.input.resize = "letterbox"
  config.input.preprocess = "to_float"
  config.input.augment = "pad_crop(pad=4)"
  config.input.normalize = "normalize(mean=0.1, std=0.25)"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 100
  config.log_every_steps = 50
  config.eval_every_steps = 500
  config.checkpoint.every_steps = 500
  config.checkpoint.best_metric = "mean_iou"
  weights = {"cross_entropy": 1.0}
  if dice > 0:
    weights["dice"] = dice
  config.segmentation = ml_collections.ConfigDict({"loss_weights": weights, "grid_examples": 8})
  if smoke:
    common.apply_smoke(config)
    config.input.batch_size = 8
    config.input.eval_batch_size = 250
  return config


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, form="same", depth=3, width=16, upsampling="transposed", steps=3000, batch=16,
                          lr=2e-3, dice=0.0, size=96, smoke=False)
  if args.form not in FORMS:
    raise ConfigError(f"form={args.form!r}; use form=same or form=valid")
  config = digit_scenes_config(FORMS[args.form], args.steps, args.batch, args.lr, args.dice, args.size,
                               args.smoke)
  config.model.kwargs = ml_collections.ConfigDict({"depth": args.depth, "width": args.width,
                                                   "upsampling": args.upsampling})
  return config
