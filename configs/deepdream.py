"""DeepDream (`vision_jax.interpret.dream`): a picture changed to amplify what chosen layers of a frozen
classifier see in it (gradient ascent on layer-weighted activation norms, normalised steps, jitter, octaves).

    python -m vision_jax.main --config=configs/interpret_classifier.py --workdir=runs/interpret/classifier  # once
    python -m vision_jax.main --config=configs/deepdream.py --workdir=runs/deepdream     # a generated digit card
    python -m vision_jax.main --config=configs/deepdream.py:image=photo.jpg,size=128,layers=layer3_0+layer3_1 \
--workdir=...
    python -m vision_jax.main --config=configs/deepdream.py:smoke,network=random --workdir=/tmp/dream  # seconds

Arguments (`:key=value,...`): image (a file, card (default) or a texture waves | checks | blobs), size (shorter
side), layers and layer_weights (joined by "+"), octaves, octave_scale, jitter (pixels), blur (sigma after each
step; 0: none), steps, lr (the normalised step size, plain SGD), render_every, smoke, and the network arguments of
`vision_jax.interpret.network.NETWORK_ARGS`. Writes image.png, start.png, progress/, progress.png, curves.png
(loss = minus the objective, and each layer's norm), metrics.csv and summary.json.
"""

from vision_jax.configs import common
from vision_jax.interpret import network, run_config


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, image="", size=96, layers="layer3_0+layer3_1", layer_weights="", octaves=3,
                          octave_scale=1.4, jitter=4, blur=0.0, steps=120, lr=0.002, render_every=20, smoke=False,
                          **network.NETWORK_ARGS)
  problem = {
      "image": args.image, "size": args.size, "layers": args.layers, "layer_weights": args.layer_weights,
      "octaves": args.octaves, "octave_scale": args.octave_scale, "jitter": args.jitter, "blur": args.blur,
      "network": network.network_section(args)}
  return run_config.input_problem_config(common.base_config(), "deepdream", problem, "sgd", args.lr,
                                         args.steps, args.render_every, 60, args.smoke)
