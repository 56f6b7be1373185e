"""ProGAN (Karras et al.) on the embedded digits zero-padded to 32x32: 4 -> 8 -> 16 -> 32 (task `progan`).

    python -m vision_jax.main --config=configs/gan_progan.py --workdir=/work/runs/gan_translation/progan
    python -m vision_jax.main --config=configs/gan_progan.py:smoke --workdir=/tmp/progan_smoke   # seconds

Widths 64, 64, 32, 16 at 4, 8, 16, 32 px, latent 64, `phase` steps per resolution (the first half of each phase
after the first fades the new block in), LSGAN + drift 1e-3 (`loss=wasserstein` for the paper's WGAN-GP with
penalty 10: 10-50x slower per step on the CPU at 16-32 px), Adam 1e-3 with betas 0 / 0.99 (the paper's)
for both networks, minibatch-stddev groups of 4, generator EMA 0.99 evaluated (0.999 would keep much of the
initial weights in a run of a few thousand steps); FID/KID/precision/recall on this project's digits feature
network (the centre 28x28).

Arguments (`:key=value,...`): phase (steps per phase), batch, lr, loss, seed, smoke. The run lasts 4 phases.
"""

import ml_collections

from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, phase=600, batch=32, lr=1e-3, loss="lsgan", seed=0, smoke=False)
  config = common.base_config()
  config.task = "progan"
  config.seed = args.seed
  config.dataset.name = "mnist_embedded"
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 500
  config.input.preprocess = "to_float|pad(to=32)"
  config.input.normalize = "normalize(mean=0.5, std=0.5)"  # [-1, 1]
  features = (64, 64, 32, 16)
  config.progan = ml_collections.ConfigDict({
      "latent_dim": 64, "features": features, "steps_per_phase": args.phase, "fade_fraction": 0.5,
      "loss": args.loss, "gradient_penalty": 10.0 if args.loss == "wasserstein" else 0.0, "drift": 1e-3,
      "group_size": 4, "ema_decay": 0.99, "eval_generator": "ema", "feature_net": "mnist_embedded",
      "kid_subsets": 10, "kid_subset_size": 1000, "pr_k": 3, "num_samples": 64})
  config.num_train_steps = args.phase * len(features)
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.optimizer.b1 = 0.0
  config.optimizer.b2 = 0.99
  config.log_every_steps = 50
  config.eval_every_steps = args.phase
  config.checkpoint.every_steps = args.phase
  if args.smoke:
    common.apply_smoke(config)
    config.progan.steps_per_phase = 5  # every phase, with fades, in 20 steps
    config.eval_every_steps = 20
    config.dataset.eval_split = "test[:200]"
    config.input.eval_batch_size = 100
    config.progan.kid_subsets = 2
    config.progan.kid_subset_size = 100
  return config
