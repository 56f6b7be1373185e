"""alexnet on the embedded MNIST digits, padded to 64x64 (AlexNet needs at least 63x63).

    python -m vision_jax.main --config=configs/alexnet_digits.py --workdir=/tmp/alexnet_digits
    python -m vision_jax.main --config=configs/alexnet_digits.py:smoke --workdir=/tmp/alexnet_smoke   # seconds

Arguments (`:key=value,...`): epochs, batch, lr, smoke. Everything else is configs/mnist_lenet.py's digits setup.
"""

from vision_jax.configs import common, mnist_lenet


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, epochs=10, batch=64, lr=0.001, smoke=False)
  config = mnist_lenet.get_config(f"model=alexnet,epochs={args.epochs},batch={args.batch},lr={args.lr},"
                                  f"smoke={args.smoke}")
  config.input.preprocess = "to_float|pad(to=64)"
  return config
