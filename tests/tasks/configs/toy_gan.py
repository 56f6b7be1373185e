"""A weight-clipped WGAN of MLPs on the embedded digits (test-only task `toy_gan`, tests/tasks/toy_tasks.py).

    PYTHONPATH=. python -m vision_jax.main --config=tests/tasks/configs/toy_gan.py:smoke --workdir=/tmp/toy_gan

Two optimizers: `optimizer` (Adam, b1 0.5) for the generator, `optimizers.critic` (RMSprop without momentum, as
in the WGAN paper) for the critic; `gan.n_critic` critic updates per generator update. Labels are not used.

Arguments (`:key=value,...`): steps, batch, n_critic, smoke.
"""

import ml_collections

import tests.tasks.toy_tasks  # noqa: F401  (registers the toy tasks)
from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=2000, batch=64, n_critic=5, smoke=False)
  config = common.base_config()
  config.task = "toy_gan"
  config.dataset.name = "mnist_embedded"
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 256
  config.input.preprocess = "to_float"
  config.input.normalize = "normalize(mean=0.5, std=0.5)"  # [-1, 1], the generator's tanh range
  config.gan = ml_collections.ConfigDict({"latent_dim": 16, "n_critic": args.n_critic, "clip": 0.01,
                                          "num_samples": 16})
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 2e-4
  config.optimizer.b1 = 0.5
  config.optimizers.critic = ml_collections.ConfigDict({"name": "rmsprop", "learning_rate": 5e-4, "momentum": 0.0})
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint.every_steps = 500
  if args.smoke:
    common.apply_smoke(config)
    config.dataset.eval_split = "test[:64]"
    config.input.eval_batch_size = 32
  return config
