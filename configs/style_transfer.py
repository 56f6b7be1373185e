"""Neural style transfer (`vision_jax.interpret.style`): a content picture redrawn with the Gram statistics of a
style picture, through a frozen classifier's layers.

    python -m vision_jax.main --config=configs/interpret_classifier.py --workdir=runs/interpret/classifier  # once
    python -m vision_jax.main --config=configs/style_transfer.py --workdir=runs/style   # generated card + waves
    python -m vision_jax.main --config=configs/style_transfer.py:content=a.jpg,style=b.jpg,size=96 --workdir=...
    python -m vision_jax.main --config=configs/style_transfer.py:optimizer=lbfgs,steps=60 --workdir=...
    python -m vision_jax.main --config=configs/style_transfer.py:network=torch,model=vgg16,weights=vgg16.pth,\
content_layers=features_conv4_2,... --workdir=...       # RGB, with torchvision VGG16 weights you have

Arguments (`:key=value,...`): content, style (an image file, a generated texture waves | checks | blobs, or
card: a generated digit card; defaults card and waves), size (shorter side, pixels), init (content | noise),
content_layers, style_layers (module paths joined by "+"; `python -m vision_jax.interpret layers` lists them),
content_weight, style_weight, tv_weight, steps, lr, optimizer (adam or lbfgs), render_every, smoke, and the
network arguments of `vision_jax.interpret.network.NETWORK_ARGS` (default: the run trained by the first command;
network=random: seeded random weights, no training needed). Pictures with more channels than the network's are
converted (grey for the default 1-channel network). Writes image.png, content.png, style.png, progress/,
progress.png, curves.png (loss, content_loss, style_loss, tv_loss), metrics.csv, summary.json.
"""

from vision_jax.configs import common
from vision_jax.interpret import network, run_config


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, content="", style="", size=64, init="content",
                          content_layers="layer2_1", style_layers="stem+layer1_1+layer2_1+layer3_1",
                          content_weight=1.0, style_weight=30.0, tv_weight=0.01, steps=300, lr=0.02,
                          optimizer="adam", render_every=50, smoke=False, **network.NETWORK_ARGS)
  problem = {
      "content": args.content, "style": args.style, "size": args.size, "init": args.init,
      "content_layers": args.content_layers, "style_layers": args.style_layers,
      "content_weight": args.content_weight, "style_weight": args.style_weight, "tv_weight": args.tv_weight,
      "network": network.network_section(args)}
  return run_config.input_problem_config(common.base_config(), "style_transfer", problem, args.optimizer, args.lr,
                                         args.steps, args.render_every, 100, args.smoke)
