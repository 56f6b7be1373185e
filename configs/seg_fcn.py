"""FCN-32s / 16s / 8s (Long et al., 2015) on the `digit_scenes` semantic masks, with a small VGG-style backbone.

    python -m vision_jax.main --config=configs/seg_fcn.py:variant=8s --workdir=runs/seg_fcn8s
    python -m vision_jax.main --config=configs/seg_fcn.py:variant=32s --workdir=runs/seg_fcn32s
    python -m vision_jax.main --config=configs/seg_fcn.py:smoke                                # seconds

Arguments (`:key=value,...`): variant (32s | 16s | 8s: scores from pool5 only, fused with pool4, and with pool3
too), at_once (scale pool4 by 0.01 and pool3 by 0.0001 before their score layers, the paper's FCN-8s trained all
at once rather than staged from FCN-32s and FCN-16s), steps, batch, lr, dice, size, smoke. Model `fcn<variant>_small`: conv stages 16-32-64-96-128 wide (1, 1, 2, 2, 2
convs), fc6 3x3 and fc7 1x1 of 256 channels, "same" layout (vision_jax/models/segmentation/fcn.py); the same
recipe as configs/seg_unet.py.
"""

import ml_collections

from vision_jax.configs import common, seg_unet
from vision_jax.errors import ConfigError
from vision_jax.models.segmentation.fcn import AT_ONCE_SKIP_SCALES

VARIANTS = ("32s", "16s", "8s")


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, variant="8s", at_once=False, steps=3000, batch=16, lr=1e-3, dice=0.0, size=96,
                          smoke=False)
  if args.variant not in VARIANTS:
    raise ConfigError(f"variant={args.variant!r}; use one of {', '.join(VARIANTS)}")
  config = seg_unet.digit_scenes_config(f"fcn{args.variant}_small", args.steps, args.batch, args.lr, args.dice,
                                        args.size, args.smoke)
  if args.at_once:
    config.model.kwargs = ml_collections.ConfigDict({"skip_scales": AT_ONCE_SKIP_SCALES})
  return config
