"""LeNet-5 on the embedded 10k MNIST sample (the default experiment).

    python -m vision_jax.main                                   # ReLU LeNet-5 on 28x28
    python -m vision_jax.main --config=configs/mnist_lenet.py:model=lenet5   # classic tanh LeNet-5, padded to 32x32
    python -m vision_jax.main --config=configs/mnist_lenet.py:smoke          # seconds

Arguments (`:key=value,...`): model, epochs, batch, lr, dataset (e.g. `mnist` once prepared with TFDS), smoke.
"""

from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="lenet5_relu", epochs=30, batch=128, lr=3e-3,
                          dataset="mnist_embedded", smoke=False)
  config = common.base_config()
  config.model.name = args.model
  config.dataset.name = args.dataset
  config.num_epochs = args.epochs
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 512
  config.input.preprocess = "to_float" + ("|pad(to=32)" if args.model == "lenet5" else "")
  config.input.augment = "pad_crop(pad=2)|rotate(degrees=8)"
  config.input.normalize = "normalize(mean=0.1307, std=0.3081)"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 200
  config.log_every_steps = 50
  config.checkpoint.best_metric = "accuracy"
  if args.smoke:
    common.apply_smoke(config)
  return config
