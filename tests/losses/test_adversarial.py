"""Adversarial losses against NumPy float64 formulas written from the papers, the gradient penalty against
hand-derived cases, and weight clipping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.errors import ConfigError
from vision_jax.losses import adversarial

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(6,)).astype(np.float32) * 3
FAKE = RNG.normal(size=(6,)).astype(np.float32) * 3


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def _numpy_losses(kind, real, fake):
  """(discriminator, generator) losses straight from each paper's probability / score form."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  d_real, d_fake = _sigmoid(real), _sigmoid(fake)
  if kind in ("minimax", "non_saturating"):
    disc = -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))
    gen = np.mean(np.log(1 - d_fake)) if kind == "minimax" else -np.mean(np.log(d_fake))
  elif kind == "lsgan":
    disc = 0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake ** 2)
    gen = 0.5 * np.mean((fake - 1) ** 2)
  elif kind == "hinge":
    disc = np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake))
    gen = -np.mean(fake)
  else:
    disc, gen = np.mean(fake) - np.mean(real), -np.mean(fake)
  return disc, gen


@pytest.mark.parametrize("kind", adversarial.LOSS_KINDS)
def test_losses_match_numpy_formulas(kind):
  disc, gen = _numpy_losses(kind, REAL, FAKE)
  np.testing.assert_allclose(adversarial.discriminator_loss(kind, REAL, FAKE), disc, rtol=1e-5)
  np.testing.assert_allclose(adversarial.generator_loss(kind, FAKE), gen, rtol=1e-5)


def test_patch_logits_average_over_every_element():
  real, fake = REAL.reshape(1, 2, 3), FAKE.reshape(2, 3)
  np.testing.assert_allclose(adversarial.discriminator_loss("lsgan", real, fake),
                             _numpy_losses("lsgan", REAL, FAKE)[0], rtol=1e-6)


def test_hand_worked_values():
  # D(x) = 0 everywhere: log 2 per term for the logistic losses; 1 per term for hinge.
  zeros = np.zeros(4, np.float32)
  np.testing.assert_allclose(adversarial.discriminator_loss("minimax", zeros, zeros), 2 * np.log(2), rtol=1e-6)
  np.testing.assert_allclose(adversarial.generator_loss("non_saturating", zeros), np.log(2), rtol=1e-6)
  np.testing.assert_allclose(adversarial.discriminator_loss("hinge", zeros, zeros), 2.0)
  np.testing.assert_allclose(adversarial.discriminator_loss("wasserstein", np.array([3.0]), np.array([1.0])), -2.0)


def test_non_saturating_gradient_does_not_vanish_where_minimax_does():
  # A confident discriminator (D(G(z)) = -10): minimax's generator gradient is ~sigma(-10) small, the other's ~1.
  fake = jnp.array([-10.0])
  g_minimax = jax.grad(lambda f: adversarial.generator_loss("minimax", f))(fake)
  g_ns = jax.grad(lambda f: adversarial.generator_loss("non_saturating", f))(fake)
  np.testing.assert_allclose(g_minimax, [-_sigmoid(-10.0)], rtol=1e-4)
  np.testing.assert_allclose(g_ns, [-(1 - _sigmoid(-10.0))], rtol=1e-4)


def test_unknown_kind_is_a_config_error():
  with pytest.raises(ConfigError, match="unknown adversarial loss"):
    adversarial.generator_loss("wgan", FAKE)


def test_gradient_penalty_of_a_linear_critic():
  # D(x) = <w, x>: grad = w at every point, so the penalty is lambda * (||w|| - 1)^2 whatever the interpolates.
  w = jnp.asarray(RNG.normal(size=(2, 3, 1)), jnp.float32)
  real = RNG.normal(size=(5, 2, 3, 1)).astype(np.float32)
  fake = RNG.normal(size=(5, 2, 3, 1)).astype(np.float32)
  critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
  expected = 10.0 * (np.linalg.norm(np.asarray(w, np.float64)) - 1.0) ** 2
  np.testing.assert_allclose(adversarial.gradient_penalty(critic, real, fake, jax.random.PRNGKey(3)), expected,
                             rtol=1e-5)


def test_gradient_penalty_of_a_quadratic_critic_at_known_points():
  # D(x) = 1/2 ||x||^2 has grad x; with real == fake the interpolates are the points themselves.
  # Rows: norm 3 (3-4-0 scaled), norm 1 and norm 0 -> lambda/3 * ((3-1)^2 + 0 + 1) = 2 * 5 / 3 with lambda 2.
  points = np.array([[1.8, 2.4, 0.0], [0.6, 0.0, 0.8], [0.0, 0.0, 0.0]], np.float32)
  critic = lambda x: 0.5 * jnp.sum(x * x, axis=1)
  got = adversarial.gradient_penalty(critic, points, points, jax.random.PRNGKey(0), weight=2.0)
  np.testing.assert_allclose(got, 2.0 * 5.0 / 3.0, rtol=1e-5)


def test_gradient_penalty_gradient_wrt_critic_parameter():
  # D_a(x) = a * sum(x): ||grad_x|| = |a| sqrt(d), penalty = lambda (|a| sqrt(d) - 1)^2,
  # d penalty / da = 2 lambda sqrt(d) (a sqrt(d) - 1) for a > 0; here d = 9.
  x = np.ones((4, 9), np.float32)
  penalty = lambda a: adversarial.gradient_penalty(lambda y: a * jnp.sum(y, axis=1), x, 0 * x, jax.random.PRNGKey(1))
  a = 0.5
  np.testing.assert_allclose(penalty(a), 10 * (a * 3 - 1) ** 2, rtol=1e-5)
  np.testing.assert_allclose(jax.grad(penalty)(a), 2 * 10 * 3 * (a * 3 - 1), rtol=1e-4)


def test_interpolates_lie_on_each_segment_with_per_example_coefficients():
  real = RNG.normal(size=(64, 2, 2, 1)).astype(np.float32)
  fake = RNG.normal(size=(64, 2, 2, 1)).astype(np.float32)
  points = np.asarray(adversarial.random_interpolates(real, fake, jax.random.PRNGKey(7)), np.float64)
  ratio = (points - fake) / (real - fake)  # eps of each element
  eps = ratio[:, 0, 0, 0]
  np.testing.assert_allclose(ratio, np.broadcast_to(eps[:, None, None, None], ratio.shape), atol=1e-4)
  assert np.all((eps >= 0) & (eps <= 1))
  assert np.std(eps) > 0.15  # differs across examples (U[0, 1] has std 0.29)


def test_clip_weights():
  params = {"dense": {"kernel": jnp.array([[-0.5, 0.003], [0.02, -0.01]]), "bias": jnp.array([0.009, -0.2])},
            "scale": jnp.array([1.0], jnp.bfloat16)}
  clipped = adversarial.clip_weights(params, 0.01)
  np.testing.assert_array_equal(clipped["dense"]["kernel"], np.array([[-0.01, 0.003], [0.01, -0.01]], np.float32))
  np.testing.assert_array_equal(clipped["dense"]["bias"], np.array([0.009, -0.01], np.float32))
  assert clipped["scale"].dtype == jnp.bfloat16 and float(clipped["scale"][0]) == pytest.approx(0.01, rel=1e-2)
  with pytest.raises(ConfigError, match="positive"):
    adversarial.clip_weights(params, 0.0)


def test_mode_seeking_term_against_numpy():
  images = RNG.uniform(-1, 1, size=(4, 3, 3, 1)).astype(np.float32)
  latents = RNG.normal(size=(4, 5)).astype(np.float32)
  # Pairs (0, 2) and (1, 3): mean image gap over mean latent gap, inverted (Mao et al.'s code).
  image_gap = np.mean(np.abs(images[:2].astype(np.float64) - images[2:]))
  latent_gap = np.mean(np.abs(latents[:2].astype(np.float64) - latents[2:]))
  expected = 1 / (image_gap / latent_gap + 1e-5)
  got = float(adversarial.mode_seeking_loss(jnp.asarray(images), jnp.asarray(latents)))
  assert got == pytest.approx(expected, rel=1e-5)
  # Identical halves (a collapsed generator): the term is 1 / epsilon.
  same = np.concatenate([images[:2], images[:2]])
  assert float(adversarial.mode_seeking_loss(jnp.asarray(same), jnp.asarray(latents))) == pytest.approx(1e5, rel=1e-4)
  with pytest.raises(ConfigError, match="even batch"):
    adversarial.mode_seeking_loss(jnp.asarray(images[:3]), jnp.asarray(latents[:3]))
