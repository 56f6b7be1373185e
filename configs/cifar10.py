"""The small classifiers of the zoo on CIFAR-10 (TFDS `cifar10`, prepared once as array_record).

    tfds build cifar10 --file_format=array_record        # once, needs TensorFlow for that step only
    python -m vision_jax.main --config=configs/cifar10.py:model=resnet18_cifar --workdir=runs/resnet18_cifar10

Arguments (`:key=value,...`): model (little_vgg, resnet18_cifar, resnet34_cifar, resnet50_cifar, nin,
simple_cnn or any other registered classifier that takes 32x32 inputs), epochs, batch, lr, smoke.
Recipe: Adam, 500 warm-up steps then cosine, pad-and-crop by 4 pixels and horizontal flips.
"""

from vision_jax.configs import common

EPOCHS = {"little_vgg": 60, "nin": 100, "simple_cnn": 50}


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="resnet18_cifar", epochs=0, batch=128, lr=1e-3, smoke=False)
  config = common.base_config()
  config.model.name = args.model
  config.dataset.name = "cifar10"
  config.num_epochs = args.epochs or EPOCHS.get(args.model, 100)
  config.input.batch_size = args.batch
  config.input.preprocess = "to_float"
  config.input.augment = "pad_crop(pad=4)|flip_lr"
  config.input.normalize = "normalize(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 500
  config.checkpoint.best_metric = "accuracy"
  if args.smoke:
    common.apply_smoke(config)
  return config
