"""Optimizers and learning-rate schedules chosen by config, built from optax."""

from __future__ import annotations

import ml_collections
import optax

from vision_jax.errors import ConfigError


def make_schedule(cfg: ml_collections.ConfigDict, base_lr: float, total_steps: int,
                  steps_per_epoch: int) -> optax.Schedule:
  """Builds the learning-rate schedule named by `cfg.name`.

  Args:
    cfg: the `schedule` config section (name, warmup_steps, decay_steps, decay_rate, end_factor).
    base_lr: peak learning rate.
    total_steps: length of the run in steps (cosine schedules end there).
    steps_per_epoch: default period of step/exponential decay when `cfg.decay_steps` is 0.

  Returns:
    An optax schedule, step -> learning rate.
  """
  period = cfg.decay_steps or steps_per_epoch
  name = cfg.name
  if name == "constant":
    schedule = optax.constant_schedule(base_lr)
  elif name == "step":
    schedule = optax.exponential_decay(base_lr, period, cfg.decay_rate, staircase=True)
  elif name == "exponential":
    schedule = optax.exponential_decay(base_lr, period, cfg.decay_rate)
  elif name == "cosine":
    schedule = optax.cosine_decay_schedule(base_lr, max(total_steps, 1), alpha=cfg.end_factor)
  elif name == "warmup_cosine":
    warmup = min(cfg.warmup_steps, max(total_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(0.0, base_lr, warmup, max(total_steps, warmup + 1),
                                              end_value=base_lr * cfg.end_factor)
  else:
    raise ConfigError(f"unknown schedule {name!r}; use constant, step, exponential, cosine or warmup_cosine")
  if cfg.warmup_steps > 0:
    warmup = optax.linear_schedule(0.0, base_lr, cfg.warmup_steps)
    schedule = optax.join_schedules([warmup, schedule], [cfg.warmup_steps])
  return schedule


def make_optimizer(cfg: ml_collections.ConfigDict, schedule: optax.Schedule) -> optax.GradientTransformation:
  """Builds the optimizer named by `cfg.name`, with optional clipping and weight decay.

  Args:
    cfg: the `optimizer` config section.
    schedule: learning rate per step.

  Returns:
    clip (if grad_clip_norm > 0) -> weight decay (L2 on the gradient, except adamw's decoupled decay) ->
    the optimizer.
  """
  name = cfg.name
  if name == "sgd":
    opt = optax.sgd(schedule, momentum=cfg.momentum or None, nesterov=cfg.nesterov)
  elif name == "adam":
    opt = optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  elif name == "adamw":
    opt = optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
  elif name == "rmsprop":
    opt = optax.rmsprop(schedule, decay=cfg.rho, eps=cfg.eps, momentum=cfg.momentum or None)
  elif name == "adagrad":
    opt = optax.adagrad(schedule, eps=cfg.eps)
  elif name == "adadelta":
    opt = optax.adadelta(schedule, rho=cfg.rho, eps=cfg.eps)
  else:
    raise ConfigError(f"unknown optimizer {name!r}; use sgd, adam, adamw, rmsprop, adagrad or adadelta")
  parts = []
  if cfg.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
  if cfg.weight_decay > 0 and name != "adamw":
    parts.append(optax.add_decayed_weights(cfg.weight_decay))
  return optax.chain(*parts, opt)
