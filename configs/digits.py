"""Any classifier of the zoo on the embedded MNIST digits, zero-padded to the model's smallest input.

    python -m vision_jax.main --config=configs/digits.py:model=little_vgg --workdir=runs/little_vgg_digits
    python -m vision_jax.main --config=configs/digits.py:model=resnet18_cifar,smoke     # seconds

Arguments (`:key=value,...`): model (any registered classifier), epochs, batch, lr, smoke. Everything else is
configs/mnist_lenet.py's digits recipe (Adam, warm-up + cosine, pad-crop and rotation). The digits keep one
channel: the first convolution of every model is built for the input it is given.
"""

from vision_jax.configs import common, mnist_lenet

# Smallest square input each architecture accepts (its strides and valid-padded layers need it); 32 otherwise.
PAD_TO = {"alexnet": 64, "inception_v3": 76, "keras_inception_v3": 76, "xception": 72, "lenet5": 32,
          "lenet5_relu": 28}
# Models that take a few minutes per epoch on a laptop CPU default to fewer epochs and smaller batches.
LARGE = ("alexnet", "vgg", "resnet50", "resnet101", "resnet152", "densenet", "googlenet", "inception", "xception")


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="little_vgg", epochs=0, batch=0, lr=1e-3, smoke=False)
  large = args.model.startswith(LARGE) or args.model.startswith(tuple("keras_" + p for p in LARGE))
  epochs = args.epochs or (10 if large else 15)
  batch = args.batch or (64 if large else 128)
  config = mnist_lenet.get_config(f"model={args.model},epochs={epochs},batch={batch},lr={args.lr},smoke={args.smoke}")
  pad_to = PAD_TO.get(args.model, 32)
  config.input.preprocess = "to_float" + (f"|pad(to={pad_to})" if pad_to > 28 else "")
  return config
