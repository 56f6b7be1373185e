"""Activation maximisation (`vision_jax.interpret.views.ActivationMax`): images, grown from faint noise, that
maximise chosen channels of a layer (or class logits) of a frozen classifier; one image per channel, as a grid.

    python -m vision_jax.main --config=configs/interpret_classifier.py --workdir=runs/interpret/classifier  # once
    python -m vision_jax.main --config=configs/activation_max.py --workdir=runs/maximize_classes   # digits 0-9
    python -m vision_jax.main --config=configs/activation_max.py:layer=layer3_1,channels=0-15 --workdir=...
    python -m vision_jax.main --config=configs/activation_max.py:smoke,network=random --workdir=/tmp/am  # seconds

Arguments (`:key=value,...`): layer (a module path, default logits: the class scores), channels ("0-9", "3+5"),
size, noise (start: 0.5 + this standard deviation), l2_weight, tv_weight, octaves, octave_scale, jitter, blur,
steps, lr (Adam), render_every, smoke, and the network arguments of `vision_jax.interpret.network.NETWORK_ARGS`.
Writes image.png (the grid, channel order row by row), progress/, progress.png, curves.png, metrics.csv and
summary.json.
"""

from vision_jax.configs import common
from vision_jax.interpret import network, run_config


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, layer="logits", channels="0-9", size=64, noise=0.05, l2_weight=1.0,
                          tv_weight=0.05, octaves=2, octave_scale=1.5, jitter=2, blur=0.3, steps=200, lr=0.02,
                          render_every=40, smoke=False, **network.NETWORK_ARGS)
  problem = {
      "layer": args.layer, "channels": args.channels.replace("+", ","), "size": args.size, "noise": args.noise,
      "l2_weight": args.l2_weight, "tv_weight": args.tv_weight, "octaves": args.octaves,
      "octave_scale": args.octave_scale, "jitter": args.jitter, "blur": args.blur,
      "network": network.network_section(args)}
  config = run_config.input_problem_config(common.base_config(), "activation_max", problem, "adam", args.lr,
                                           args.steps, args.render_every, 100, args.smoke)
  if args.smoke:
    config.problem.channels = "0-3"
  return config
