"""The feature network of the interpretation tools (`vision_jax.interpret`): a narrow ResNet-18 (CIFAR stem,
width 8, global average pooling) trained to name the digit of `digit_localization` (64x64 cards; the boxes are
used only by the pointing game, never in training).

    python -m vision_jax.main --config=configs/interpret_classifier.py --workdir=runs/interpret/classifier
    python -m vision_jax.main --config=configs/interpret_classifier.py:smoke --workdir=/tmp/cls   # seconds

Arguments (`:key=value,...`): epochs, batch, lr, width (channels of the first stage), smoke. The trained run is the
default network of configs/deepdream.py, activation_max.py and style_transfer.py and of
`python -m vision_jax.interpret ... --config=configs/interpret_classifier.py --workdir=runs/interpret/classifier`.
"""

from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, epochs=3, batch=64, lr=3e-3, width=8, smoke=False)
  config = common.base_config()
  config.model.name = "resnet18_cifar"
  config.model.kwargs.width = args.width
  config.dataset.name = "digit_localization"
  config.num_epochs = args.epochs
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 250
  config.input.preprocess = "to_float"
  config.input.augment = "pad_crop(pad=4)"
  config.input.normalize = "normalize(mean=0.28, std=0.3)"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 100
  config.log_every_steps = 25
  config.checkpoint.best_metric = "accuracy"
  if args.smoke:
    common.apply_smoke(config)
  return config
