"""ProGAN's pieces: pixel norm and minibatch stddev against NumPy, equalised learning rate, and the fade-in: at
alpha 0 a phase is the previous phase's network, at alpha 1 it no longer depends on the previous phase's layers,
and a traced phase gives the same as a Python one."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.models.generative import progan

WIDTHS = (8, 8, 4)  # 4, 8, 16 px


def test_pixel_norm_matches_numpy():
  x = np.random.default_rng(0).normal(size=(2, 3, 3, 5)).astype(np.float32)
  expected = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + 1e-8)
  np.testing.assert_allclose(np.asarray(progan.pixel_norm(jnp.asarray(x))), expected, rtol=1e-5)
  np.testing.assert_allclose(np.sqrt(np.mean(np.asarray(progan.pixel_norm(jnp.asarray(x))) ** 2, -1)), 1, rtol=1e-5)


def _stddev_reference(x: np.ndarray, group: int) -> np.ndarray:
  """Example i is in group {j : j = i mod M} (M = N / group), as the paper's reshape([group, -1, ...]) makes."""
  n = len(x)
  groups = n // group
  out = np.zeros(n)
  for m in range(groups):
    members = x[m::groups].astype(np.float64)  # [group, H, W, C]
    out[m::groups] = np.mean(np.sqrt(np.var(members, axis=0) + 1e-8))
  return out


@pytest.mark.parametrize("group", [2, 4])
def test_minibatch_stddev_matches_numpy(group):
  x = (np.random.default_rng(1).normal(size=(8, 3, 3, 2)) * np.arange(1, 9)[:, None, None, None]).astype(np.float32)
  out = np.asarray(progan.minibatch_stddev(jnp.asarray(x), group))
  assert out.shape == (8, 3, 3, 3)
  np.testing.assert_array_equal(out[..., :2], x)
  expected = _stddev_reference(x, group)
  np.testing.assert_allclose(out[..., 2], np.broadcast_to(expected[:, None, None], (8, 3, 3)), rtol=1e-5)


def test_equalised_dense_scales_unit_normal_weights_by_he_constant():
  layer = progan.EqualDense(3)
  x = np.random.default_rng(2).normal(size=(4, 6)).astype(np.float32)
  variables = layer.init(jax.random.PRNGKey(0), jnp.asarray(x))
  kernel = np.asarray(variables["params"]["kernel"])
  assert kernel.shape == (6, 3)
  np.testing.assert_allclose(np.asarray(layer.apply(variables, jnp.asarray(x))), x @ kernel * math.sqrt(2 / 6),
                             rtol=1e-5, atol=1e-6)
  big = progan.EqualConv(64, 3).init(jax.random.PRNGKey(1), jnp.zeros((1, 4, 4, 32)))["params"]["kernel"]
  assert abs(float(jnp.std(big)) - 1) < 0.05  # stored at unit scale; the He constant is applied at run time


def test_resampling_matches_numpy():
  x = np.arange(32, dtype=np.float32).reshape(1, 4, 4, 2)
  up = np.asarray(progan.upsample_nearest(jnp.asarray(x), 2))
  np.testing.assert_array_equal(up[0, 2:4, 4:6, 1], np.full((2, 2), x[0, 1, 2, 1]))
  down = np.asarray(progan.downsample_average(jnp.asarray(x), 2))
  np.testing.assert_allclose(down[0, 1, 0], x[0, 2:4, 0:2].mean((0, 1)))


@pytest.fixture(scope="module")
def networks():
  generator, discriminator = progan.ProGenerator(1, WIDTHS), progan.ProDiscriminator(WIDTHS, group_size=2)
  z = jax.random.normal(jax.random.PRNGKey(3), (4, 8))
  images = jax.random.uniform(jax.random.PRNGKey(4), (4, 16, 16, 1), minval=-1, maxval=1)
  g = generator.init(jax.random.PRNGKey(5), z, 0)
  d = discriminator.init(jax.random.PRNGKey(6), images, 0)
  return generator, discriminator, g, d, z, images


def _perturbed(variables, name):
  params = dict(variables["params"])
  params[name] = jax.tree.map(lambda p: p + 1.0, params[name])
  return {"params": params}


@pytest.mark.parametrize("phase", [1, 2])
def test_generator_fade_in_endpoints(networks, phase):
  generator, _, g, _, z, _ = networks
  at_zero = np.asarray(generator.apply(g, z, phase, 0.0))
  np.testing.assert_allclose(at_zero, np.asarray(generator.apply(g, z, phase - 1, 1.0)), rtol=1e-6, atol=1e-6)
  # alpha 0: the new block is unused; alpha 1: the previous phase's to_rgb is unused.
  new_block = _perturbed(g, f"second_convs_{phase - 1}")
  np.testing.assert_allclose(np.asarray(generator.apply(new_block, z, phase, 0.0)), at_zero, rtol=1e-6, atol=1e-6)
  at_one = np.asarray(generator.apply(g, z, phase, 1.0))
  old_rgb = _perturbed(g, f"to_rgb_{phase - 1}")
  np.testing.assert_allclose(np.asarray(generator.apply(old_rgb, z, phase, 1.0)), at_one, rtol=1e-6, atol=1e-6)
  assert not np.allclose(np.asarray(generator.apply(old_rgb, z, phase, 0.5)), generator.apply(g, z, phase, 0.5))
  assert at_zero.shape == (4, 16, 16, 1)
  block = 16 // (4 * 2 ** (phase - 1))  # alpha 0 shows the previous resolution: constant blocks
  np.testing.assert_array_equal(at_zero, np.repeat(np.repeat(at_zero[:, ::block, ::block], block, 1), block, 2))


@pytest.mark.parametrize("phase", [1, 2])
def test_discriminator_fade_in_endpoints(networks, phase):
  _, discriminator, _, d, _, images = networks
  at_zero = np.asarray(discriminator.apply(d, images, phase, 0.0))
  np.testing.assert_allclose(at_zero, np.asarray(discriminator.apply(d, images, phase - 1, 1.0)), rtol=1e-5,
                             atol=1e-5)
  new_block = _perturbed(d, f"first_convs_{phase - 1}")
  np.testing.assert_allclose(np.asarray(discriminator.apply(new_block, images, phase, 0.0)), at_zero, rtol=1e-6)
  at_one = np.asarray(discriminator.apply(d, images, phase, 1.0))
  old_rgb = _perturbed(d, f"from_rgb_{phase - 1}")
  np.testing.assert_allclose(np.asarray(discriminator.apply(old_rgb, images, phase, 1.0)), at_one, rtol=1e-6)


def test_discriminator_sees_only_the_phase_resolution(networks):
  _, discriminator, _, d, _, images = networks
  pooled = progan.upsample_nearest(progan.downsample_average(images, 4), 4)  # the 4x4 content only
  np.testing.assert_allclose(np.asarray(discriminator.apply(d, pooled, 0, 1.0)),
                             np.asarray(discriminator.apply(d, images, 0, 1.0)), rtol=1e-5, atol=1e-6)


def test_traced_phase_and_alpha_give_the_same_networks(networks):
  generator, discriminator, g, d, z, images = networks
  traced_g = jax.jit(lambda p, a: generator.apply(g, z, p, a))
  traced_d = jax.jit(lambda p, a: discriminator.apply(d, images, p, a))
  for phase, alpha in ((0, 1.0), (1, 0.3), (2, 1.0)):
    # compiled vs op-by-op float32 rounding only (the images are O(1))
    np.testing.assert_allclose(np.asarray(traced_g(phase, alpha)), np.asarray(generator.apply(g, z, phase, alpha)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(traced_d(phase, alpha)),
                               np.asarray(discriminator.apply(d, images, phase, alpha)), rtol=1e-4, atol=1e-4)
