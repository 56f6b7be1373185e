"""Gradient accumulation equals the big-batch gradient; remat policies leave values and gradients unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.train_lib import step_memory
from vision_jax.errors import ConfigError


def _mlp_loss(params, batch):
  hidden = jnp.tanh(batch["x"] @ params["w1"])
  return jnp.mean((hidden @ params["w2"] - batch["y"]) ** 2)


def _setup():
  rng = np.random.default_rng(0)
  params = {"w1": rng.normal(size=(5, 7)), "w2": rng.normal(size=(7, 1))}
  batch = {"x": rng.normal(size=(12, 5)), "y": rng.normal(size=(12, 1))}
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params), jax.tree.map(jnp.asarray, batch)


@pytest.mark.parametrize("num_micro", [1, 2, 3, 4])
def test_accumulated_gradient_equals_big_batch_gradient(num_micro):
  params, batch = _setup()

  def grad_fn(p, micro, carry, index):
    return jax.grad(_mlp_loss)(p, micro), (micro["y"][:, 0], carry + 1)

  grads, outputs, carry = jax.jit(step_memory.accumulate_gradients, static_argnums=(0, 4))(
      grad_fn, params, batch, jnp.zeros((), jnp.int32), num_micro)
  expected = jax.grad(_mlp_loss)(params, batch)
  for name in params:
    np.testing.assert_allclose(grads[name], expected[name], rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(outputs, batch["y"][:, 0])  # per-example outputs come back in order
  assert int(carry) == num_micro  # the carry is threaded through every micro-batch


def test_indivisible_batch_is_a_config_error():
  params, batch = _setup()
  with pytest.raises(ConfigError, match="multiple of train.grad_accum_steps"):
    step_memory.accumulate_gradients(lambda p, m, c, i: (p, (m, c)), params, batch, 0, 5)


@pytest.mark.parametrize("policy", ["full", "dots"])
def test_remat_keeps_values_and_gradients(policy):
  params, batch = _setup()
  plain = jax.value_and_grad(_mlp_loss)(params, batch)
  remat = jax.jit(jax.value_and_grad(step_memory.maybe_remat(_mlp_loss, policy)))(params, batch)
  np.testing.assert_allclose(remat[0], plain[0], rtol=1e-6)
  for name in params:
    np.testing.assert_allclose(remat[1][name], plain[1][name], rtol=1e-5, atol=1e-7)


def test_unknown_remat_policy():
  with pytest.raises(ConfigError, match="unknown train.remat"):
    step_memory.maybe_remat(_mlp_loss, "some")
