"""CycleGAN on TFDS `cycle_gan/horse2zebra` at 64x64 (task `image_translation`, mode cyclegan).

    python -m vision_jax.main --config=configs/gan_horse2zebra.py --workdir=runs/horse2zebra

Needs the dataset prepared as array_record (`tfds build cycle_gan/horse2zebra --file_format=array_record`, with
tensorflow for that step only). Domains are separate TFDS splits (trainA horses, trainB zebras); the training loop
reads one split per run, so this config trains only once the loop can put a second split's images into each batch
as `image2` (until then the first train step stops with a one-line error naming this). The networks are the
paper's 128px recipe scaled to 64px: ResNet generators of width 32 with 6 blocks, 70x70-style PatchGANs; FID on
7x7 pooled pixels (the digits feature network does not apply).

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
  config.input.image_size = args.size
  config.input.eval_batch_size = 20
  return config
