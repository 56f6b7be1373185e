"""DCGAN and conditional networks: shapes and ranges, stage arithmetic, hand-counted parameters, the paper's
N(0, 0.02) initialization, and the conditional discriminators against NumPy formulas of their trunks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.models import generative


@pytest.mark.parametrize("size,expected", [(28, (2, 7)), (32, (3, 4)), (64, (4, 4)), (14, (1, 7))])
def test_num_stages(size, expected):
  assert generative.num_stages(size) == expected


def test_num_stages_rejects_odd_sizes():
  with pytest.raises(ValueError, match="cannot be reached"):
    generative.num_stages(27)


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_generator_and_discriminator_shapes(shape):
  g = generative.Generator(shape, width=8)
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 16))
  variables = jax.jit(g.init)(jax.random.PRNGKey(1), z)
  images = jax.jit(g.apply)(variables, z)
  assert images.shape == (3,) + shape and float(jnp.max(jnp.abs(images))) <= 1.0
  d = generative.Discriminator(width=8)
  assert jax.eval_shape(d.init, jax.random.PRNGKey(2), images)["params"]["Dense_0"]["kernel"].shape[1] == 1
  assert jax.eval_shape(lambda x: d.apply(d.init(jax.random.PRNGKey(2), x), x), images).shape == (3,)
  # Train mode updates the running statistics.
  _, updates = jax.jit(lambda v, z: g.apply(v, z, train=True, mutable=["batch_stats"]))(variables, z)
  assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(
      variables["batch_stats"])))


def test_generator_parameter_count_by_hand():
  # 28x28x1, width 32, latent 100: dense 100 -> 7*7*64 (no bias) + BN(64) + convT 4x4 64 -> 32 (no bias) + BN(32)
  # + convT 4x4 32 -> 1 with bias.
  g = generative.Generator((28, 28, 1), width=32)
  params = jax.eval_shape(g.init, jax.random.PRNGKey(0), jnp.zeros((1, 100)))["params"]
  expected = 100 * 7 * 7 * 64 + 2 * 64 + 16 * 64 * 32 + 2 * 32 + 16 * 32 * 1 + 1
  assert sum(x.size for x in jax.tree.leaves(params)) == expected


def test_discriminator_parameter_count_by_hand_for_each_norm():
  # 28x28x1, width 32: conv 4x4 1 -> 32 (+bias), conv 4x4 32 -> 64, dense 7*7*64 -> 1 (+bias).
  images = jnp.zeros((1, 28, 28, 1))
  convs = 16 * 1 * 32 + 32 + 16 * 32 * 64 + 7 * 7 * 64 + 1
  for norm, extra in (("batch", 2 * 64), ("none", 64), ("layer", 64 + 2 * 7 * 7 * 64)):
    variables = jax.eval_shape(generative.Discriminator(width=32, norm=norm).init, jax.random.PRNGKey(0), images)
    assert sum(x.size for x in jax.tree.leaves(variables["params"])) == convs + extra, norm
    assert ("batch_stats" in variables) == (norm == "batch")


def test_dcgan_initialization_is_normal_0_02():
  g = generative.Generator((28, 28, 1), width=8)
  params = jax.jit(g.init)(jax.random.PRNGKey(0), jnp.zeros((1, 100)))["params"]
  kernel = np.asarray(params["Dense_0"]["kernel"])  # 100 x 784 draws
  assert abs(kernel.mean()) < 1e-3 and kernel.std() == pytest.approx(0.02, rel=0.02)
  scale = np.asarray(params["BatchNorm_0"]["scale"])
  assert abs(scale.mean() - 1) < 0.02 and 0.005 < scale.std() < 0.04  # 16 draws of N(1, 0.02)


def _trunk_features(module_params, images, width):
  trunk = generative.DiscriminatorTrunk(width, "none")
  return np.asarray(jax.jit(trunk.apply)({"params": module_params["trunk"]}, images), np.float64)


def test_projection_discriminator_is_linear_plus_embedding_inner_product():
  d = generative.ProjectionDiscriminator(num_classes=4, width=8, norm="none")
  images = jax.random.normal(jax.random.PRNGKey(0), (5, 28, 28, 1))
  labels = jnp.array([0, 1, 2, 3, 1])
  params = jax.jit(d.init)(jax.random.PRNGKey(1), images, labels)["params"]
  phi = _trunk_features(params, images, 8)
  w, b = np.asarray(params["Dense_0"]["kernel"], np.float64), np.asarray(params["Dense_0"]["bias"], np.float64)
  embed = np.asarray(params["Embed_0"]["embedding"], np.float64)[np.asarray(labels)]
  expected = (phi @ w)[:, 0] + b[0] + np.sum(embed * phi, axis=1)
  np.testing.assert_allclose(jax.jit(d.apply)({"params": params}, images, labels), expected, rtol=1e-4, atol=1e-6)


def test_concat_discriminator_sees_one_hot_class_maps_as_channels():
  d = generative.ConcatDiscriminator(num_classes=3, width=8, norm="none")
  images = jax.random.normal(jax.random.PRNGKey(0), (2, 28, 28, 1))
  labels = jnp.array([2, 0])
  params = jax.jit(d.init)(jax.random.PRNGKey(1), images, labels)["params"]
  maps = np.zeros((2, 28, 28, 3), np.float32)
  maps[0, :, :, 2] = 1
  maps[1, :, :, 0] = 1
  phi = _trunk_features(params, np.concatenate([np.asarray(images), maps], -1), 8)
  expected = phi @ np.asarray(params["Dense_0"]["kernel"], np.float64) + np.asarray(params["Dense_0"]["bias"])
  np.testing.assert_allclose(jax.jit(d.apply)({"params": params}, images, labels), expected[:, 0], rtol=1e-4, atol=1e-6)


def test_conditional_generator_depends_on_the_class():
  g = generative.ConditionalGenerator((28, 28, 1), num_classes=10, width=8)
  z = jnp.tile(jax.random.normal(jax.random.PRNGKey(0), (1, 16)), (2, 1))
  variables = jax.jit(g.init)(jax.random.PRNGKey(1), z, jnp.array([0, 0]))
  apply = jax.jit(g.apply)
  same = apply(variables, z, jnp.array([3, 3]))
  different = apply(variables, z, jnp.array([3, 7]))
  # Identical rows may differ by float32 rounding (batch rows take different SIMD paths on some CPUs; seen:
  # 5e-10 on outputs of size 1e-4); the class changes the image by orders of magnitude more.
  scale = float(jnp.max(jnp.abs(same)))
  np.testing.assert_allclose(same[0], same[1], rtol=1e-5, atol=1e-5 * scale)
  assert float(jnp.max(jnp.abs(different[0] - different[1]))) > max(1e-4, 0.1 * scale)



def test_conditional_generator_parameters_with_and_without_class_maps():
  # Hand count: latent 16 + embedding 16 -> dense; 28 = 7 * 2^2, so the maps before the two transposed
  # convolutions have 8 * 2 = 16 and 8 channels, plus 10 one-hot class channels each with class_maps.
  z, labels = jnp.zeros((1, 16)), jnp.zeros((1,), jnp.int32)
  for maps, extra in ((False, 0), (True, 10)):
    g = generative.ConditionalGenerator((28, 28, 1), num_classes=10, width=8, class_maps=maps)
    params = jax.eval_shape(g.init, jax.random.PRNGKey(1), z, labels)["params"]
    inner = params["generator"]
    assert params["label_embedding"]["embedding"].shape == (10, 16)
    assert inner["Dense_0"]["kernel"].shape == (32, 7 * 7 * 16)
    assert inner["ConvTranspose_0"]["kernel"].shape == (4, 4, 16 + extra, 8)
    assert inner["ConvTranspose_1"]["kernel"].shape == (4, 4, 8 + extra, 1)


@pytest.mark.parametrize("class_maps,low,high", [(False, 0.5, 2.0), (True, 4.0, np.inf)])
def test_conditional_generator_balance_of_class_and_latent_at_init(class_maps, low, high):
  # Spread of samples over 10 classes at one latent / over 10 latents at one class. A one-hot through the dense
  # projection alone gives ~0.13 (classes ignored after training); class maps at every layer ~8.5 (each class
  # collapsed to one image); the default embedding ~1.
  g = generative.ConditionalGenerator((28, 28, 1), num_classes=10, width=32, class_maps=class_maps)
  z = jax.random.normal(jax.random.PRNGKey(0), (10, 100))
  variables = jax.jit(g.init)(jax.random.PRNGKey(1), z, jnp.zeros((10,), jnp.int32))
  apply = jax.jit(g.apply)
  by_class = np.asarray(apply(variables, jnp.tile(z[:1], (10, 1)), jnp.arange(10))).std(axis=0).mean()
  by_latent = np.asarray(apply(variables, z, jnp.zeros((10,), jnp.int32))).std(axis=0).mean()
  assert low < by_class / by_latent < high
