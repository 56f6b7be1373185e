"""The digits with heavy augmentation: random resized crops, a random affine map, brightness/contrast jitter,
cutout, and mixup or cutmix with soft targets.

    python -m vision_jax.main --config=configs/digits_augmented.py --workdir=runs/digits_cutmix
    python -m vision_jax.main --config=configs/digits_augmented.py:mix=mixup,alpha=0.2,smoke
    python -m vision_jax.main --config=configs/digits_augmented.py --config.input.augment='flip_lr|cutout(size=8)'

Arguments (`:key=value,...`): model (any classifier configs/digits.py takes), mix (cutmix, mixup or none),
alpha (the Beta(alpha, alpha) of the mixing weight), epochs, smoke. Everything else is configs/digits.py's recipe.
The digits are grayscale, so the colour ops here are brightness and contrast (saturation and hue would be the
identity, PCA lighting needs RGB); flips are left out because they change what a digit is.
"""

from vision_jax.configs import common, digits
from vision_jax.errors import ConfigError

MIXES = ("cutmix", "mixup", "none")


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="lenet5_relu", mix="cutmix", alpha=1.0, epochs=20, smoke=False)
  if args.mix not in MIXES:
    raise ConfigError(f"mix={args.mix!r} is not one of {', '.join(MIXES)}")
  config = digits.get_config(f"model={args.model},epochs={args.epochs},smoke={args.smoke}")
  ops = ["random_resized_crop(scale=(0.6, 1.0), ratio=(0.8, 1.25))",
         "affine(degrees=10, shear=(10, 0), translate=(0.05, 0.05))",
         "brightness(factor=0.2)", "contrast(factor=0.2)", "cutout(size=8, p=0.5)"]
  if args.mix != "none":
    ops.append(f"{args.mix}(alpha={args.alpha})")
  config.input.augment = "|".join(ops)
  return config
