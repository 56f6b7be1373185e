"""DCGAN (Radford et al.) on the embedded digits or Fashion-MNIST items, FID on this project's feature network.

    python -m vision_jax.main --config=configs/gan_dcgan.py --workdir=/work/runs/gan/dcgan_digits
    python -m vision_jax.main --config=configs/gan_dcgan.py:data=fashion --workdir=/work/runs/gan/dcgan_fashion
    python -m vision_jax.main --config=configs/gan_dcgan.py:smoke --workdir=/tmp/dcgan_smoke   # seconds

Non-saturating loss, Adam 2e-4 with b1 0.5 for both networks, one discriminator and one generator update per step,
batch-norm DCGAN networks of width 32 (28x28), latent 100, generator EMA 0.99 evaluated (0.999 averages over so
many early updates that runs of a few thousand steps evaluate a blur: FID 949 against the live weights' 219 at
step 333). Every evaluation writes samples.png and interpolation.png (and step-tagged copies under samples/) to the
workdir; `evals` evaluations spread evenly over the run.

Arguments (`:key=value,...`): data (digits | fashion), steps, batch, width, lr, ema (0: evaluate the live weights),
evals, seed, smoke.
`gan_config` is the shared recipe of configs/gan_cgan.py, gan_wgan.py and gan_wgan_gp.py.
"""

import ml_collections

from vision_jax.configs import common

DATASETS = {"digits": "mnist_embedded", "fashion": "fashion_mnist_embedded"}


def gan_config(args: ml_collections.ConfigDict, **gan: object) -> ml_collections.ConfigDict:
  """The shared GAN recipe for the 28x28 embedded datasets; `gan` overrides entries of `config.gan`.

  Args:
    args: parsed arguments with data, steps, batch, width, lr, ema, evals, seed, smoke.
  """
  config = common.base_config()
  config.task = "gan"
  config.seed = args.seed
  config.dataset.name = DATASETS[args.data] if args.data in DATASETS else args.data
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 500
  config.input.preprocess = "to_float"
  config.input.normalize = "normalize(mean=0.5, std=0.5)"  # [-1, 1], the generator's tanh range
  config.gan = ml_collections.ConfigDict({
      "latent_dim": 100, "loss": "non_saturating", "n_critic": 1, "wgan_schedule": False, "clip": 0.0,
      "gradient_penalty": 0.0, "ema_decay": args.ema, "conditional": "", "class_maps": False,
      "generator_width": args.width, "discriminator_width": args.width, "discriminator_norm": "batch",
      "feature_net": config.dataset.name if args.data in DATASETS else "pixels", "eval_generator": "ema",
      "kid_subsets": 10, "kid_subset_size": 1000, "pr_k": 3, "num_samples": 64, "mode_seeking": 0.0})
  config.gan.update(gan)
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.optimizer.b1 = 0.5
  config.optimizer.b2 = 0.999
  config.log_every_steps = 100
  config.eval_every_steps = max(1, args.steps // args.evals)
  config.checkpoint.every_steps = config.eval_every_steps
  if args.smoke:
    common.apply_smoke(config)
    config.dataset.eval_split = "test[:200]"
    config.input.eval_batch_size = 100
    config.gan.kid_subsets = 2
    config.gan.kid_subset_size = 100
  return config


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, data="digits", steps=3000, batch=64, width=32, lr=2e-4, ema=0.99, evals=6, seed=0,
                          smoke=False)
  return gan_config(args)
