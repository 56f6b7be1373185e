"""Class-conditional DCGAN (Mirza & Osindero) on the embedded digits or Fashion-MNIST items.

    python -m vision_jax.main --config=configs/gan_cgan.py --workdir=/work/runs/gan/cgan_digits
    python -m vision_jax.main --config=configs/gan_cgan.py:form=projection --workdir=/work/runs/gan/cgan_projection
    python -m vision_jax.main --config=configs/gan_cgan.py:smoke --workdir=/tmp/cgan_smoke

The generator takes the one-hot class next to the latent; the discriminator sees the class as extra input
channels (form=concat) or through a projection (form=projection, Miyato & Koyama). Evaluation adds the feature
classifier's accuracy on samples of each requested class (`conditional_accuracy`, `..._per_class`); samples.png
has one row per class. Otherwise configs/gan_dcgan.py's recipe.

Arguments (`:key=value,...`): data (digits | fashion), form (concat | projection), steps, batch, width, lr, seed,
smoke.
"""

from vision_jax.configs import common, gan_dcgan


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, data="digits", form="concat", steps=3000, batch=64, width=32, lr=2e-4, seed=0,
                          smoke=False)
  return gan_dcgan.gan_config(args, conditional=args.form, num_samples=100)
