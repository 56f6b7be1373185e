"""DCGAN on CelebA faces (TFDS `celeb_a`, prepared once with `tfds build celeb_a --file_format=array_record`),
centre-cropped and resized to 64x64, as in the DCGAN paper's face experiments.

    python -m vision_jax.main --config=configs/gan_celeb_a.py --workdir=/work/runs/gan/dcgan_celeb_a
    python -m vision_jax.main --config=configs/gan_celeb_a.py:loss=hinge --workdir=/work/runs/gan/celeb_a_hinge

No feature network of this project sees faces, so FID/KID/precision-recall are measured on 7x7 average-pooled
pixels (`gan.feature_net = "pixels"`): a crude yardstick, comparable only between runs of this config.

Arguments (`:key=value,...`): steps, batch, width, lr, loss (any `losses.adversarial.LOSS_KINDS` but wasserstein,
which needs gan_wgan_gp's critic), seed, smoke.
"""

from vision_jax.configs import common, gan_dcgan


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, data="celeb_a", steps=20000, batch=128, width=64, lr=2e-4, loss="non_saturating",
                          ema=0.999, evals=6, seed=0, smoke=False)
  config = gan_dcgan.gan_config(args, loss=args.loss, latent_dim=100)
  config.dataset.train_split = "train"
  config.dataset.eval_split = "validation[:2000]"
  config.input.image_size = 64
  config.input.eval_batch_size = 200
  if args.smoke:
    config.dataset.eval_split = "validation[:200]"
  return config
