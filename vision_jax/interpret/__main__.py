"""Pictures of what a classifier sees.

    python -m vision_jax.interpret METHOD --workdir=RUN [--config=CONFIG] --images=a.png,b.png [--layer=L]
        [--class=K] [--out=DIR]
    python -m vision_jax.interpret gradcam --workdir=runs/interpret/classifier --images=card.png
    python -m vision_jax.interpret gradcam --model=resnet18 --weights=resnet18.pth --images=cat.jpg  # imported
    python -m vision_jax.interpret layers --workdir=runs/interpret/classifier     # the names --layer takes

METHOD: saliency, smoothgrad, guided_backprop, integrated_gradients, occlusion, gradcam, gradcam++ write
<out>/<image>_<method>.png (the image, the heatmap over it with a colour bar, the predicted class and its
probability in the title; the map explains --class, else the predicted class); filters writes filters.png (first
convolution), activations writes <image>_activations_<layer>.png (every channel of --layer), maximize writes
maximize_<layer>.png (images grown to maximise --channels of --layer; default: the class logits); layers prints
the module paths with feature-map outputs; pointing runs the pointing game on --limit digit_localization test
cards for --methods and writes pointing.json. The network is the classification run in --workdir built by --config
(default configs/interpret_classifier.py), or --model with --weights (torchvision .pth/.npz, --source=keras for
.weights.h5). Output goes to --out (default <workdir>/interpret/<method>, or ./interpret/<method>).
"""

from __future__ import annotations

import argparse
import os
import sys

from vision_jax.errors import UserError


def _parser() -> argparse.ArgumentParser:
  from vision_jax.interpret import commands  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(prog="python -m vision_jax.interpret", description=__doc__.split("\n\n")[0])
  parser.add_argument("method", choices=commands.HEATMAP_METHODS + commands.GRID_METHODS + ("pointing",))
  parser.add_argument("--workdir", default="", help="a classification run of python -m vision_jax.main")
  parser.add_argument("--config", default="", help="that run's config (default configs/interpret_classifier.py)")
  parser.add_argument("--checkpoint", default="best", choices=("best", "checkpoints"),
                      help="the run's best checkpoint (else its newest), or its newest periodic one")
  parser.add_argument("--model", default="", help="a zoo model name, with --weights")
  parser.add_argument("--weights", default="", help="imported weights (torchvision .pth/.npz or Keras .weights.h5)")
  parser.add_argument("--source", default="torch", choices=("torch", "keras"))
  parser.add_argument("--size", type=int, default=224, help="input size of imported weights")
  parser.add_argument("--images", default="", help="comma-separated image files")
  parser.add_argument("--layer", default="", help="a module path (see the `layers` method)")
  parser.add_argument("--class", dest="target", type=int, default=None, help="the class the maps explain")
  parser.add_argument("--channels", default="0-9", help="maximize: channels, e.g. 0-15 or 3,5")
  parser.add_argument("--steps", type=int, default=150, help="maximize: gradient steps")
  parser.add_argument("--limit", type=int, default=2000, help="pointing: test cards used")
  parser.add_argument("--methods", default=",".join(commands.HEATMAP_METHODS), help="pointing: methods")
  parser.add_argument("--out", default="", help="output folder")
  return parser


def _network(args):
  from vision_jax.interpret import network  # pylint: disable=import-outside-toplevel
  if args.weights:
    if not args.model:
      raise UserError("--weights needs --model (e.g. --model=resnet18)")
    return network.from_weights(args.model, args.weights, args.source, image_size=args.size)
  if not args.workdir:
    raise UserError("pass --workdir=RUN (a classification run) or --model=NAME --weights=FILE")
  return network.from_run(args.config or network.DEFAULT_RUN_CONFIG, args.workdir, args.checkpoint)


def run(argv: list[str]) -> list[str]:
  """Runs one command; returns the lines to print (the paths written, or the layer names)."""
  from vision_jax.interpret import commands, probe, views  # pylint: disable=import-outside-toplevel
  args = _parser().parse_args(argv)
  net = _network(args)
  out = args.out or os.path.join(args.workdir or ".", "interpret", args.method)
  paths = [p for p in args.images.split(",") if p]
  layer = args.layer or None
  if args.method == "layers":
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    zeros = jnp.zeros((1,) + tuple(net.image_shape))
    return [f"{n} {list(s)}" for n, s in probe.layer_names(net.model, net.variables, net.normalize(zeros))
            if n in views.layer_choices([(n, s)])]
  if args.method == "pointing":
    from vision_jax.interpret import pointing  # pylint: disable=import-outside-toplevel
    images, labels, boxes = pointing.digit_localization_test(args.limit)
    results = pointing.pointing_game(net, images, labels, boxes, args.methods.split(","), layer=layer)
    return pointing.write_report(results, os.path.join(out, "pointing.json"))
  if args.method == "filters":
    return commands.filters_grid(net, out)
  if args.method == "activations":
    return commands.activations_grid(net, paths, out, layer)
  if args.method == "maximize":
    return commands.maximize_grid(net, out, layer or "logits", args.channels, args.steps)
  return commands.overlays(net, args.method, paths, out, layer, args.target)


def main() -> None:
  """Entry point: a UserError becomes one `error:` line and exit status 2."""
  try:
    for line in run(sys.argv[1:]):
      print(line)
  except UserError as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)


if __name__ == "__main__":
  main()
