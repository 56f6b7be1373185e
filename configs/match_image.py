"""Input optimisation, the demonstration problem: uniform noise optimised into one embedded MNIST digit under
MSE + a small total-variation penalty (`vision_jax.tasks.input_problem.MatchImage`; its solution is known).

    python -m vision_jax.main --config=configs/match_image.py --workdir=runs/match_image
    python -m vision_jax.main --config=configs/match_image.py:optimizer=lbfgs,steps=30
    python -m vision_jax.main --config=configs/match_image.py:smoke          # seconds

Arguments (`:key=value,...`): steps, lr, optimizer (adam, sgd, ... or lbfgs), digit (0..9999), tv (the
total-variation weight), render_every, smoke. Writes image.png, target.png, progress/step_*.png, progress.png,
curves.png, metrics.csv and summary.json (`vision_jax.train_lib.input_opt`).
"""

import ml_collections

from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=200, lr=0.02, optimizer="adam", digit=0, tv=0.01, render_every=10,
                          smoke=False)
  base = common.base_config()
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.task = "match_image"
  config.problem = ml_collections.ConfigDict({"digit": args.digit, "tv_weight": args.tv})
  config.optimizer = base.optimizer
  config.optimizer.name = args.optimizer
  config.optimizer.learning_rate = args.lr
  config.optimizer.memory_size = 10  # lbfgs: stored (step, gradient change) pairs
  config.schedule = base.schedule
  config.schedule.name = "cosine"  # the step shrinks to zero, so Adam settles on the minimiser
  config.num_train_steps = args.steps
  config.log_every_steps = 10
  config.render_every = args.render_every  # progress/step_<step>.png every this many steps; 0: final only
  config.checkpoint = ml_collections.ConfigDict({"every_steps": 50, "keep": 3})
  if args.smoke:
    config.num_train_steps = 20
    config.log_every_steps = 5
    config.render_every = 10
    config.checkpoint.every_steps = 10
  return config
