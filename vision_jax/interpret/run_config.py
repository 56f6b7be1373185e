"""The config skeleton shared by configs/deepdream.py, style_transfer.py and activation_max.py (input problems run
by `vision_jax.train_lib.input_opt`)."""

from __future__ import annotations

from typing import Any

import ml_collections


def input_problem_config(base: ml_collections.ConfigDict, task: str, problem: dict[str, Any], optimizer: str,
                         lr: float, steps: int, render_every: int, checkpoint_every: int,
                         smoke: bool) -> ml_collections.ConfigDict:
  """A runnable input-problem config.

  Args:
    base: `configs/common.base_config()` (its optimizer and schedule sections are reused).
    task: the registered problem name.
    problem: the `config.problem` settings.
    optimizer: an optimizer name of `train_lib.optim`, or lbfgs.
    lr: its learning rate (a constant schedule).
    steps: optimisation steps.
    render_every: steps between intermediate pictures (0: the final one only).
    checkpoint_every: steps between checkpoints.
    smoke: at most 12 steps, pictures every 4 steps, and `problem.size` at most 32.
  """
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.task = task
  config.problem = ml_collections.ConfigDict(problem)
  config.optimizer = base.optimizer
  config.optimizer.name = optimizer
  config.optimizer.learning_rate = lr
  config.optimizer.memory_size = 10  # lbfgs: stored (step, gradient change) pairs
  config.schedule = base.schedule
  config.schedule.name = "constant"
  config.num_train_steps = steps
  config.log_every_steps = 10
  config.render_every = render_every
  config.checkpoint = ml_collections.ConfigDict({"every_steps": checkpoint_every, "keep": 2})
  if smoke:
    config.num_train_steps = min(steps, 12)
    config.log_every_steps = 4
    config.render_every = 4
    config.checkpoint.every_steps = 6
    config.problem.size = min(int(config.problem.size), 32)
  return config
