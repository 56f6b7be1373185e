"""WGAN-GP (Gulrajani et al.) on the embedded digits or Fashion-MNIST items.

    python -m vision_jax.main --config=configs/gan_wgan_gp.py --workdir=/work/runs/gan/wgan_gp_digits
    python -m vision_jax.main --config=configs/gan_wgan_gp.py:smoke --workdir=/tmp/wgan_gp_smoke

As in the paper: Wasserstein loss plus a gradient penalty of weight 10 on random interpolates, no batch norm in
the critic, Adam 1e-4 with betas 0.5 / 0.9 for both networks, 5 critic updates per generator update. A loop step
is one critic update, so `steps` counts critic updates.

Arguments (`:key=value,...`): data (digits | fashion), steps, batch, width, lr, n_critic, ema, evals, seed,
smoke.
"""

from vision_jax.configs import common, gan_dcgan


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, data="digits", steps=6000, batch=64, width=32, lr=1e-4, n_critic=5,
                          ema=0.99, evals=6, seed=0, smoke=False)
  config = gan_dcgan.gan_config(args, loss="wasserstein", n_critic=args.n_critic, gradient_penalty=10.0,
                                discriminator_norm="none")
  config.optimizer.b1 = 0.5
  config.optimizer.b2 = 0.9
  return config
