"""Schedules against their formulas; every optimizer minimizes a quadratic; clipping and weight decay."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vision_jax.train_lib import optim
from vision_jax.configs import common
from vision_jax.errors import ConfigError


def _schedule(**overrides):
  cfg = common.base_config().schedule
  cfg.update(overrides)
  return optim.make_schedule(cfg, base_lr=0.1, total_steps=100, steps_per_epoch=10)


def test_schedules_follow_their_definitions():
  assert float(_schedule(name="constant")(57)) == pytest.approx(0.1)
  step = _schedule(name="step", decay_rate=0.5, decay_steps=30)
  assert [float(step(s)) for s in (0, 29, 30, 61)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
  exponential = _schedule(name="exponential", decay_rate=0.5)  # period: one epoch = 10 steps
  assert float(exponential(15)) == pytest.approx(0.1 * 0.5 ** 1.5, rel=1e-5)
  cosine = _schedule(name="cosine")
  assert float(cosine(50)) == pytest.approx(0.05, rel=1e-5)
  assert float(cosine(100)) == pytest.approx(0.0, abs=1e-8)
  warm = _schedule(name="warmup_cosine", warmup_steps=10)
  assert float(warm(5)) == pytest.approx(0.05, rel=1e-5)
  assert float(warm(10)) == pytest.approx(0.1, rel=1e-5)
  assert float(warm(55)) == pytest.approx(0.05 * (1 + math.cos(math.pi * 45 / 90)), rel=1e-4)
  with pytest.raises(ConfigError, match="unknown schedule"):
    _schedule(name="triangle")


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta"])
def test_every_optimizer_descends_a_quadratic(name):
  cfg = common.base_config().optimizer
  cfg.name = name
  lr = 50.0 if name == "adadelta" else 0.05
  tx = optim.make_optimizer(cfg, optax.constant_schedule(lr))
  params = {"w": jnp.array([3.0, -2.0])}
  state = tx.init(params)
  loss = lambda p: jnp.sum(p["w"] ** 2)
  for _ in range(100):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
  assert float(loss(params)) < 0.5 * 13.0


def test_sgd_nesterov_matches_its_update_rule():
  cfg = common.base_config().optimizer
  cfg.update(name="sgd", momentum=0.9, nesterov=True)
  tx = optim.make_optimizer(cfg, optax.constant_schedule(0.1))
  params, grads = jnp.array([1.0]), [jnp.array([1.0]), jnp.array([2.0])]
  state = tx.init(params)
  velocity, expected = 0.0, 1.0
  for g in grads:
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
    velocity = 0.9 * velocity + float(g[0])
    expected -= 0.1 * (float(g[0]) + 0.9 * velocity)
  assert float(params[0]) == pytest.approx(expected, rel=1e-6)


def test_clipping_and_l2_weight_decay():
  cfg = common.base_config().optimizer
  cfg.update(name="sgd", momentum=0.0, grad_clip_norm=1.0)
  tx = optim.make_optimizer(cfg, optax.constant_schedule(1.0))
  updates, _ = tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)), jnp.zeros(2))
  np.testing.assert_allclose(updates, [-0.6, -0.8], rtol=1e-6)
  cfg.update(grad_clip_norm=0.0, weight_decay=0.5)
  tx = optim.make_optimizer(cfg, optax.constant_schedule(1.0))
  updates, _ = tx.update(jnp.array([0.0]), tx.init(jnp.array([2.0])), jnp.array([2.0]))
  np.testing.assert_allclose(updates, [-1.0])
  cfg.update(name="lbfgs")
  with pytest.raises(ConfigError, match="unknown optimizer"):
    optim.make_optimizer(cfg, optax.constant_schedule(1.0))
