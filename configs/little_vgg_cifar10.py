"""little_vgg on CIFAR-10 (TFDS name `cifar10`; prepare it once with TFDS, then point `dataset.data_dir` at it).

    python -m vision_jax.main --config=configs/little_vgg_cifar10.py --workdir=/tmp/little_vgg_cifar10

Arguments (`:key=value,...`): epochs, batch, lr, smoke.
"""

from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, epochs=60, batch=128, lr=1e-3, smoke=False)
  config = common.base_config()
  config.model.name = "little_vgg"
  config.dataset.name = "cifar10"
  config.num_epochs = args.epochs
  config.input.batch_size = args.batch
  config.input.preprocess = "to_float"
  config.input.augment = "pad_crop(pad=4)|flip_lr"
  config.input.normalize = "normalize(mean=0.47, std=0.25)"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 500
  config.checkpoint.best_metric = "accuracy"
  if args.smoke:
    common.apply_smoke(config)
  return config
