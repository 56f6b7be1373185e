"""CycleGAN (Zhu et al.) between digit edge maps and digits, trained unpaired (task `image_translation`, mode
cyclegan): each step draws the digits as a random permutation of the batch's targets, so the networks never see
which digit an edge map came from; evaluation scores edges -> digit against the true pairs.

    python -m vision_jax.main --config=configs/gan_cyclegan.py --workdir=/work/runs/gan_translation/cyclegan
    python -m vision_jax.main --config=configs/gan_cyclegan.py:smoke --workdir=/tmp/cyclegan_smoke   # seconds

Two ResNet generators (width 16, 2 downsamplings, `blocks` residual blocks), two PatchGAN discriminators, LSGAN
loss, cycle weight 10, identity weight 5, 50-image history pools, Adam 2e-4 with b1 0.5 for all four networks.

Arguments (`:key=value,...`): steps, batch, lr, blocks, seed, smoke.
"""

from vision_jax.configs import common, gan_pix2pix


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=1500, batch=16, lr=2e-4, blocks=4, seed=0, smoke=False)
  return gan_pix2pix.translation_config(args, "digit_edges2digit", mode="cyclegan", loss="lsgan",
                                        generator_features=(16, 32), num_blocks=args.blocks)
