"""The `gan` task's update schedule and constraints on tiny networks: a critic-only step leaves the generator
bit-identical, the WGAN schedule (hand-listed), clipping, the gradient penalty's presence, both updates in one
DCGAN step, the debiased EMA after one generator update, and config mistakes as one-line errors."""

import jax
import numpy as np
import optax
import pytest

from tests.tasks import in_process
from vision_jax.errors import ConfigError
from vision_jax.train_lib import setup as setup_lib

TINY = {"input__batch_size": 8, "num_train_steps": 3, "gan__generator_width": 8, "gan__discriminator_width": 8,
        "gan__latent_dim": 8}


def _setup(spec, data_dir, tmp_path_factory, **overrides):
  config = in_process.load_config(spec, data_dir, **{**TINY, **overrides})
  return setup_lib.setup(config, str(tmp_path_factory.mktemp("gan")))


def _run_steps(s, count):
  """Host copies of the states before the first and after each of `count` compiled train steps, and metrics."""
  step = in_process.compile_train_step(s)
  state, batches = s.init_state(), in_process.train_batches(s)
  states, metrics = [in_process.host_copy(state)], []
  for _ in range(count):
    state, m = step(state, next(batches))
    states.append(in_process.host_copy(state))
    metrics.append(jax.device_get(m))
  return states, metrics


def _same(a, b) -> bool:
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(leaves_a) == len(leaves_b) and all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))


@pytest.fixture(scope="module")
def wgan(data_dir, tmp_path_factory):
  s = _setup("configs/gan_wgan.py:smoke", data_dir, tmp_path_factory)
  return s, *_run_steps(s, 2)


def test_critic_only_steps_leave_the_generator_bit_identical(wgan):
  s, states, metrics = wgan
  assert s.task.disc_name == "critic"
  for before, after, m in zip(states, states[1:], metrics):
    assert m["generator_step"] == 0  # the WGAN schedule starts with 100 critic updates
    for part in ("params", "batch_stats", "opt_state"):
      assert _same(getattr(before, part)["generator"], getattr(after, part)["generator"]), part
    assert _same(before.extras["ema_generator"], after.extras["ema_generator"])
    assert not _same(before.params["critic"], after.params["critic"])
  assert int(states[-1].extras["critic_iterations"]) == 2 and int(states[-1].extras["generator_iterations"]) == 0


def test_weight_clipping_bounds_every_critic_parameter(wgan):
  _, states, _ = wgan
  leaves = jax.tree.leaves(states[-1].params["critic"])
  assert max(float(np.max(np.abs(x))) for x in leaves) <= 0.01 + 1e-9
  # Initial N(0, 0.02) kernels exceed the bound, so the clip did something.
  assert max(float(np.max(np.abs(x))) for x in jax.tree.leaves(states[0].params["critic"])) > 0.01


def test_wgan_schedule_matches_arjovskys_code(wgan):
  s, _, _ = wgan
  # Diters = 100 if gen_iterations < 25 or gen_iterations % 500 == 0 else 5.
  expected = {0: 100, 1: 100, 24: 100, 25: 5, 26: 5, 499: 5, 500: 100, 501: 5, 1000: 100}
  got = {g: int(s.task.critic_steps_needed(np.int32(g))) for g in expected}
  assert got == expected


@pytest.fixture(scope="module")
def dcgan(data_dir, tmp_path_factory):  # only the slow test below uses it (a third compiled step)
  s = _setup("configs/gan_dcgan.py:smoke", data_dir, tmp_path_factory)
  return s, *_run_steps(s, 1)


@pytest.mark.slow
def test_a_dcgan_step_updates_both_networks_and_the_ema_debiases_to_the_live_weights(dcgan):
  s, (before, after), (metrics,) = dcgan
  assert metrics["generator_step"] == 1 and metrics["gradient_penalty"] == 0
  for name in ("generator", "discriminator"):
    assert not _same(before.params[name], after.params[name]), name
    assert not _same(before.batch_stats[name], after.batch_stats[name]), name
  assert int(after.extras["generator_iterations"]) == 1
  # EMA from zero after one update: (1 - d) * w; debiased by 1 - d^1 -> exactly w (up to float32 round-off).
  evaluated = jax.device_get(s.task.eval_generator_params(jax.tree.map(np.asarray, after)))
  for got, live in zip(jax.tree.leaves(evaluated), jax.tree.leaves(after.params["generator"])):
    np.testing.assert_allclose(got, live, rtol=1e-4, atol=1e-7)


def test_wgan_gp_steps_report_a_penalty_and_the_critic_has_no_batch_norm(data_dir, tmp_path_factory):
  s = _setup("configs/gan_wgan_gp.py:smoke", data_dir, tmp_path_factory, gan__n_critic=2)
  states, metrics = _run_steps(s, 2)
  assert not states[0].batch_stats["critic"]
  assert [float(m["generator_step"]) for m in metrics] == [0.0, 1.0]
  assert all(float(m["gradient_penalty"]) > 0 for m in metrics)
  assert _same(states[0].params["generator"], states[1].params["generator"])
  assert not _same(states[1].params["generator"], states[2].params["generator"])
  # EMA from zero after one generator update: (1 - d) * w, debiased by 1 - d^1 -> w (float32 round-off).
  evaluated = jax.device_get(s.task.eval_generator_params(jax.tree.map(np.asarray, states[2])))
  for got, live in zip(jax.tree.leaves(evaluated), jax.tree.leaves(states[2].params["generator"])):
    np.testing.assert_allclose(got, live, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("overrides,message", [
    ({"gan__gradient_penalty": 10.0}, "without batch norm"),
    ({"gan__loss": "wgan"}, "unknown gan.loss"),
    ({"gan__n_critic": 0}, "n_critic"),
    ({"gan__mode_seeking": 1.0, "input__batch_size": 7}, "is odd"),
])
def test_config_mistakes_are_one_line_errors(data_dir, tmp_path_factory, overrides, message):
  with pytest.raises(ConfigError, match=message) as error:
    _setup("configs/gan_dcgan.py:smoke", data_dir, tmp_path_factory, **overrides)
  assert "\n" not in str(error.value)


def test_mode_seeking_adds_its_weighted_term_to_the_generator_loss(data_dir):
  from vision_jax import tasks  # pylint: disable=import-outside-toplevel
  from vision_jax.data import datasets  # pylint: disable=import-outside-toplevel
  from vision_jax.losses import adversarial  # pylint: disable=import-outside-toplevel
  from vision_jax.train_lib.state import TrainState  # pylint: disable=import-outside-toplevel
  _, spec = datasets.load("mnist_embedded", "test", data_dir)
  task = tasks.get(in_process.load_config("configs/gan_cgan.py:smoke", data_dir,
                                          **{**TINY, "gan__mode_seeking": 2.0}), spec)
  tx = optax.sgd(0.0)
  z = jax.random.normal(jax.random.PRNGKey(3), (8, 8))
  labels = jax.numpy.asarray([0, 3, 5, 9, 0, 3, 5, 9])

  @jax.jit
  def images_and_losses(key):  # one compiled function: init, the images, the adversarial and the whole loss
    state = TrainState.create(task.init_variables(key), {"generator": tx, "discriminator": tx},
                              jax.random.key_data(jax.random.PRNGKey(1)), task.init_extras(key))
    images = task.generate(state.params["generator"], state.batch_stats["generator"], z, labels, train=True)[0]
    scores = task.score(state.params["discriminator"], state.batch_stats["discriminator"], images, labels)[0]
    return images, task.generator_update(state, z, labels, tx)[1], adversarial.generator_loss("non_saturating", scores)

  images, loss, loss_without = jax.device_get(images_and_losses(jax.random.PRNGKey(0)))
  images, z64 = np.asarray(images, np.float64), np.asarray(z, np.float64)
  term = 1 / (np.mean(np.abs(images[:4] - images[4:])) / np.mean(np.abs(z64[:4] - z64[4:])) + 1e-5)
  assert float(loss) - float(loss_without) == pytest.approx(2.0 * term, rel=1e-4)
