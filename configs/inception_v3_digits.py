"""inception_v3 on the embedded MNIST digits, padded to 76x76 (Inception v3 needs at least 75x75).

    python -m vision_jax.main --config=configs/inception_v3_digits.py --workdir=/tmp/inception_v3_digits
    python -m vision_jax.main --config=configs/inception_v3_digits.py:smoke --workdir=/tmp/inception_v3_smoke   # seconds

Arguments (`:key=value,...`): epochs, batch, lr, smoke. Everything else is configs/mnist_lenet.py's digits setup.
"""

from vision_jax.configs import common, mnist_lenet


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, epochs=10, batch=64, lr=0.001, smoke=False)
  config = mnist_lenet.get_config(f"model=inception_v3,epochs={args.epochs},batch={args.batch},lr={args.lr},"
                                  f"smoke={args.smoke}")
  config.input.preprocess = "to_float|pad(to=76)"
  return config
