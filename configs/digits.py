"""Any classifier of the zoo on the embedded MNIST digits, zero-padded to the model's smallest input.

    python -m vision_jax.main --config=configs/digits.py:model=little_vgg --workdir=runs/little_vgg_digits
    python -m vision_jax.main --config=configs/digits.py:model=resnet18_cifar,smoke     # seconds

Arguments (`:key=value,...`): model (any registered classifier), epochs, batch, lr, aux (googlenet and
inception_v3 with their auxiliary heads, loss + 0.3 x each head's loss; inception_v3's head needs 299x299
inputs, so the digits are padded to that), smoke. Everything else is configs/mnist_lenet.py's digits recipe
(Adam, warm-up + cosine, pad-crop and rotation). The digits keep one channel: the first convolution of every
model is built for the input it is given.
"""

from vision_jax import models
from vision_jax.configs import common, imagenet2012, mnist_lenet
from vision_jax.errors import ConfigError

# Smallest square input each architecture accepts (its strides and valid-padded layers need it); 32 otherwise.
PAD_TO = {"alexnet": 64, "inception_v3": 76, "keras_inception_v3": 76, "xception": 72, "lenet5": 32,
          "lenet5_relu": 28}
# Models that take a few minutes per epoch on a laptop CPU default to fewer epochs and smaller batches.
LARGE = ("alexnet", "vgg", "resnet50", "resnet101", "resnet152", "densenet", "googlenet", "inception", "xception")


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="little_vgg", epochs=0, batch=0, lr=1e-3, aux=False, smoke=False)
  if args.model in models.NOT_IMAGE_CLASSIFIERS:
    raise ConfigError(f"model {args.model!r} does not classify single images; its own config trains it "
                      "(configs/ecg1d.py, volumes3d.py or multi_io_digits.py)")
  large = args.model.startswith(LARGE) or args.model.startswith(tuple("keras_" + p for p in LARGE))
  epochs = args.epochs or (10 if large else 15)
  batch = args.batch or (64 if large else 128)
  config = mnist_lenet.get_config(f"model={args.model},epochs={epochs},batch={batch},lr={args.lr},smoke={args.smoke}")
  imagenet2012.set_aux_heads(config, args.aux)
  pad_to = 299 if args.aux and args.model == "inception_v3" else PAD_TO.get(args.model, 32)
  config.input.preprocess = "to_float" + (f"|pad(to={pad_to})" if pad_to > 28 else "")
  return config
