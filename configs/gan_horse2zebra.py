"""CycleGAN on TFDS `cycle_gan/horse2zebra` at 64x64 (task `image_translation`, mode cyclegan).

    python -m vision_jax.main --config=configs/gan_horse2zebra.py --workdir=runs/horse2zebra

Needs the dataset prepared as array_record (`tfds build cycle_gan/horse2zebra --file_format=array_record`, with
tensorflow for that step only). The domains are separate TFDS splits: horses (trainA / testA) are `image`, zebras
(trainB / testB, `dataset.train_split2` / `eval_split2`) arrive in every batch as `image2`, drawn from their own
seeded epochs (1067 horses, 1334 zebras). The networks are the paper's 128px recipe scaled to 64px: ResNet
generators of width 32 with 6 blocks, 70x70-style PatchGANs. Evaluation is unpaired: FID of G(testA) against
testB (and of testA itself, `baseline_fid`) on 7x7 pooled pixels (the digits feature network does not apply);
the best checkpoint is the lowest FID.

Arguments (`:key=value,...`): steps, batch, lr, size, seed, smoke.
"""

from vision_jax.configs import common, gan_pix2pix


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=20000, batch=4, lr=2e-4, size=64, seed=0, smoke=False)
  config = gan_pix2pix.translation_config(args, "cycle_gan/horse2zebra", mode="cyclegan", loss="lsgan",
                                          generator_features=(32, 64), num_blocks=6,
                                          discriminator_features=(64, 128, 256), feature_net="pixels")
  config.dataset.train_split, config.dataset.eval_split = "trainA", "testA"
  config.dataset.train_split2, config.dataset.eval_split2 = "trainB", "testB"
  config.input.image_size = args.size
  config.input.eval_batch_size = 20
  return config
