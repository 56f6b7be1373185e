"""Class-conditional DCGAN (Mirza & Osindero) on the embedded digits or Fashion-MNIST items.

    python -m vision_jax.main --config=configs/gan_cgan.py --workdir=/work/runs/gan/cgan_digits
    python -m vision_jax.main --config=configs/gan_cgan.py:form=projection --workdir=/work/runs/gan/cgan_projection
    python -m vision_jax.main --config=configs/gan_cgan.py:smoke --workdir=/tmp/cgan_smoke

The generator takes a learned class embedding next to the latent (and with `maps` also the one-hot class as extra
channels at every resolution: classes then dominate the latent and each class collapses to one image; see
models/generative/conditional.py); the discriminator sees the class through a projection
(form=projection, Miyato & Koyama; the default) or as extra input channels (form=concat). Evaluation adds the feature
classifier's accuracy on samples of each requested class (`conditional_accuracy`, `..._per_class`); samples.png
has one row per class. Otherwise configs/gan_dcgan.py's recipe.

Arguments (`:key=value,...`): data (digits | fashion), form (projection | concat), maps, ms (weight of MSGAN's
mode-seeking term, Mao et al. 2019; 0: off), steps, batch, width, lr, ema, evals, seed, smoke.
"""

from vision_jax.configs import common, gan_dcgan


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, data="digits", form="projection", maps=False, ms=0.0, steps=3000, batch=64, width=32,
                          lr=2e-4, ema=0.99, evals=6, seed=0, smoke=False)
  return gan_dcgan.gan_config(args, conditional=args.form, class_maps=args.maps, num_samples=100,
                              mode_seeking=args.ms)
