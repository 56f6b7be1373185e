"""WGAN with weight clipping (Arjovsky, Chintala, Bottou) on the embedded digits or Fashion-MNIST items.

    python -m vision_jax.main --config=configs/gan_wgan.py --workdir=/work/runs/gan/wgan_digits
    python -m vision_jax.main --config=configs/gan_wgan.py:smoke --workdir=/tmp/wgan_smoke

As in the paper and its code: Wasserstein loss, critic weights clipped to +-0.01 after each update, RMSprop 5e-5
(no momentum) for both networks, 5 critic updates per generator update and 100 while the generator has made
fewer than 25 updates and at every 500th; the DCGAN critic keeps its batch norm. A loop step is one critic
update (the generator update rides on every n-th), so `steps` counts critic updates.

Arguments (`:key=value,...`): data (digits | fashion), steps, batch, width, lr, n_critic, ema, evals, seed,
smoke.
"""

from vision_jax.configs import common, gan_dcgan


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, data="digits", steps=6000, batch=64, width=32, lr=5e-5, n_critic=5,
                          ema=0.99, evals=6, seed=0, smoke=False)
  config = gan_dcgan.gan_config(args, loss="wasserstein", n_critic=args.n_critic, wgan_schedule=True, clip=0.01)
  config.optimizer.name = "rmsprop"
  config.optimizer.momentum = 0.0
  config.optimizer.rho = 0.99  # PyTorch's RMSprop alpha, as in the WGAN code
  return config
