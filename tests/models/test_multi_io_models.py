"""1D/3D CNNs and the two-input multi-head model: shapes by the output-size rule, parameter counts by hand,
and one set of encoder weights shared by both inputs (the gradient is the sum of the two branches')."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import models
from vision_jax.errors import UserError
from vision_jax.layers.conv import output_size
from vision_jax.models.conv_nd import ConvNetND


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _convnet_params(in_channels, widths, kernel, dims, classes):
  """Hand count: bias-free k^d * c_in * c_out convolutions, BN scale + bias, a dense layer with bias."""
  total, c_in = 0, in_channels
  for w in widths:
    total += kernel ** dims * c_in * w + 2 * w
    c_in = w
  return total + c_in * classes + classes


@pytest.mark.parametrize("name,shape,dims,widths,kernel", [
    ("cnn1d", (3, 1024, 1), 1, (16, 32, 64, 64), 7),
    ("cnn3d", (3, 16, 16, 16, 1), 3, (8, 16, 32), 3),
])
def test_presets_map_their_rank_to_logits_with_hand_counted_parameters(name, shape, dims, widths, kernel):
  model = models.get(name, num_classes=4)
  x = jnp.zeros(shape)
  rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  out, variables = jax.eval_shape(lambda x: model.init_with_output(rngs, x, train=True), x)
  assert out.shape == (3, 4)
  assert _count(variables["params"]) == _convnet_params(1, widths, kernel, dims, 4)
  assert _count(variables["batch_stats"]) == 2 * sum(widths)  # running mean and variance


@pytest.mark.parametrize("dims,spatial,kernel,stride,pool", [
    (1, (101,), 5, 2, 2),
    (3, (17, 12, 9), 3, 1, 2),
    (3, (13, 13, 13), 3, 2, 1),
])
def test_feature_sizes_follow_the_output_size_rule(dims, spatial, kernel, stride, pool):
  widths = (4, 5)
  model = ConvNetND(num_classes=3, spatial_dims=dims, widths=widths, kernel_size=kernel, strides=stride,
                    padding="VALID", pool=pool)
  x = jnp.ones((2,) + spatial + (2,))
  logits, state = jax.eval_shape(
      lambda x: model.init_with_output(jax.random.key(0), x, capture_intermediates=True), x)
  assert logits.shape == (2, 3)
  sizes = list(spatial)
  for i, width in enumerate(widths):
    sizes = [output_size(n, kernel, 0, stride) for n in sizes]  # floor((n + 2p - f) / s) + 1, p = 0
    (conv_out,) = state["intermediates"][f"conv{i}"]["__call__"]
    assert conv_out.shape == (2, *sizes, width)
    if pool > 1 and min(sizes) >= pool:
      sizes = [output_size(n, pool, 0, pool) for n in sizes]


def test_same_padding_keeps_the_length_and_a_wrong_rank_is_a_user_error():
  model = ConvNetND(num_classes=2, spatial_dims=1, widths=(3,), kernel_size=7, pool=1)
  x = jnp.ones((1, 50, 1))
  _, state = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, capture_intermediates=True), x)
  assert state["intermediates"]["conv0"]["__call__"][0].shape == (1, 50, 3)
  with pytest.raises(UserError, match=r"1D convolutional network expects signals \[N, T, C\].*\(2, 8, 8, 1\)"):
    model.init(jax.random.key(0), jnp.ones((2, 8, 8, 1)))


@pytest.fixture(scope="module")
def siamese():
  model = models.get("siamese_multi_head")
  x1, x2 = jax.random.normal(jax.random.key(1), (2, 3, 28, 28, 1))
  params = jax.jit(model.init)(jax.random.key(0), x1, x2)["params"]
  return model, params, x1, x2


def test_two_inputs_share_one_encoder(siamese):
  model, params, x1, x2 = siamese
  assert sorted(params) == ["encoder", "fuse", "outputs_digit_sum", "outputs_first_digit", "outputs_same_digit"]
  # Hand count: conv3x3(1->32), conv3x3(32->64), 7*7*64 -> 128 embedding; fusion 4*128 -> 128; heads 1, 10, 1.
  encoder = (9 * 1 * 32 + 32) + (9 * 32 * 64 + 64) + (7 * 7 * 64 * 128 + 128)
  assert _count(params["encoder"]) == encoder
  assert _count(params) == encoder + (4 * 128 * 128 + 128) + (128 + 1) + (128 * 10 + 10) + (128 + 1)
  outputs = model.apply({"params": params}, x1, x2)
  assert {k: v.shape for k, v in outputs.items()} == {"digit_sum": (3, 1), "first_digit": (3, 10),
                                                      "same_digit": (3, 1)}
  # The same weights encode either input: swapping the inputs swaps the embeddings.
  e1 = model.apply({"params": params}, x1, method="encode")
  both = model.apply({"params": params}, jnp.concatenate([x2, x1]), method="encode")
  np.testing.assert_allclose(both[3:], e1, rtol=1e-5, atol=1e-6)


def test_shared_gradient_is_the_sum_of_the_two_branch_gradients(siamese):
  model, params, x1, x2 = siamese
  objective = lambda outputs: sum(jnp.sum(jnp.sin(v)) for v in outputs.values())
  shared = jax.jit(jax.grad(lambda p: objective(model.apply({"params": p}, x1, x2))))(params)

  def untied(enc_a, enc_b, rest):  # the same network with a separate copy of the encoder per input
    e1 = model.apply({"params": {**rest, "encoder": enc_a}}, x1, method="encode")
    e2 = model.apply({"params": {**rest, "encoder": enc_b}}, x2, method="encode")
    return objective(model.apply({"params": {**rest, "encoder": enc_a}}, e1, e2, method="predict_heads"))

  rest = {k: v for k, v in params.items() if k != "encoder"}
  grad_a, grad_b, grad_rest = jax.jit(jax.grad(untied, argnums=(0, 1, 2)))(params["encoder"], params["encoder"],
                                                                            rest)
  for got, a, b in zip(jax.tree.leaves(shared["encoder"]), jax.tree.leaves(grad_a), jax.tree.leaves(grad_b)):
    np.testing.assert_allclose(got, a + b, rtol=1e-4, atol=1e-6)
  kernel = lambda g: np.asarray(g["embed"]["kernel"])
  assert np.abs(kernel(grad_a)).max() > 0 and np.abs(kernel(grad_b)).max() > 0
  assert not np.allclose(kernel(grad_a), kernel(shared["encoder"]))  # the second branch contributes
  for got, want in zip(jax.tree.leaves({k: shared[k] for k in rest}), jax.tree.leaves(grad_rest)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
