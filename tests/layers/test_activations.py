"""Activations against their formulas in NumPy float64, PReLU's gradient, CReLU's width, lookup errors."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.layers import activations

X = np.linspace(-7.0, 7.0, 561)  # float64 reference inputs; the library computes in float32
ERF = np.vectorize(math.erf)
# SELU constants (Klambauer et al., 2017, eq. 14).
SELU_ALPHA, SELU_LAMBDA = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


FORMULAS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "leaky_relu(negative_slope=0.2)": lambda x: np.where(x >= 0, x, 0.2 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "elu(alpha=0.5)": lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)),
    "selu": lambda x: SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0))),
    "gelu(approximate=True)": lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))),
    "swish": lambda x: x * _sigmoid(x),
    "swish(beta=2.0)": lambda x: x * _sigmoid(2.0 * x),
    "silu": lambda x: x * _sigmoid(x),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "identity": lambda x: x,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}


@pytest.mark.parametrize("spec", sorted(FORMULAS))
def test_activation_matches_its_formula(spec):
  got = np.asarray(activations.get(spec)(jnp.asarray(X, jnp.float32)), np.float64)
  np.testing.assert_allclose(got, FORMULAS[spec](X), rtol=2e-6, atol=2e-6)


def test_formulas_cover_every_function_activation():
  covered = {spec.split("(")[0] for spec in FORMULAS}
  assert covered | {"prelu", "crelu"} == set(activations.names())


def test_exact_and_tanh_gelu_differ():
  # The exact GELU is the default (PyTorch, Keras); jax.nn.gelu's default is the tanh form. At x = -3 the
  # forms differ by ~2e-4, far above float32 rounding.
  x = jnp.array([-3.0])
  assert abs(float(activations.get("gelu")(x)[0] - activations.get("gelu(approximate=True)")(x)[0])) > 1e-4


def test_crelu_doubles_the_channel_axis():
  x = np.random.default_rng(0).standard_normal((2, 3, 3, 4))
  y = np.asarray(activations.crelu(jnp.asarray(x, jnp.float32)))
  assert y.shape == (2, 3, 3, 8)
  np.testing.assert_allclose(y, np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], -1), rtol=1e-6)
  # relu(x) - relu(-x) = x: no information is lost.
  np.testing.assert_allclose(y[..., :4] - y[..., 4:], x, rtol=1e-6, atol=1e-6)


class _ConvActConv(nn.Module):
  act: activations.Activation

  @nn.compact
  def __call__(self, x):
    x = self.act(nn.Conv(4, (3, 3), name="conv1")(x))
    return self.act(nn.Conv(3, (3, 3), name="conv2")(x))


def test_layer_after_crelu_is_built_for_the_doubled_width():
  out, v = jax.eval_shape(lambda x: _ConvActConv(activations.get("crelu")).init_with_output(jax.random.key(0), x),
                          jnp.zeros((1, 5, 5, 2)))
  assert v["params"]["conv1"]["kernel"].shape == (3, 3, 2, 4)
  assert v["params"]["conv2"]["kernel"].shape == (3, 3, 8, 3)
  assert out.shape == (1, 5, 5, 6)


def test_prelu_forward_and_gradient_wrt_slope():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((4, 6, 3))
  slopes = np.array([0.1, -0.3, 0.7])
  g = rng.standard_normal(x.shape)  # upstream gradient: loss = sum(g * prelu(x))
  layer = activations.PReLU()
  v = layer.init(jax.random.key(0), jnp.asarray(x, jnp.float32))
  assert v["params"]["slope"].shape == (3,) and np.all(np.asarray(v["params"]["slope"]) == 0.25)  # He et al.
  params = {"params": {"slope": jnp.asarray(slopes, jnp.float32)}}
  np.testing.assert_allclose(layer.apply(params, jnp.asarray(x, jnp.float32)),
                             np.where(x >= 0, x, slopes * x), rtol=1e-6, atol=1e-6)
  loss = lambda p: jnp.sum(jnp.asarray(g, jnp.float32) * layer.apply(p, jnp.asarray(x, jnp.float32)))
  grad = np.asarray(jax.grad(loss)(params)["params"]["slope"])
  # d loss / d a_c = sum over negative inputs of channel c of g * x (He et al., 2015, eq. 2).
  np.testing.assert_allclose(grad, np.sum(np.where(x < 0, g * x, 0.0), axis=(0, 1)), rtol=1e-5, atol=1e-5)


def test_prelu_channel_shared_has_one_slope():
  layer = activations.PReLU(init_slope=0.1, channel_shared=True)
  v = layer.init(jax.random.key(0), jnp.ones((2, 5)))
  assert v["params"]["slope"].shape == ()
  np.testing.assert_allclose(layer.apply(v, jnp.array([[-2.0, 3.0]])), [[-0.2, 3.0]], rtol=1e-6)


def test_prelu_by_name_gives_every_layer_its_own_slopes():
  v = _ConvActConv(activations.get("prelu(init_slope=0.5)")).init(jax.random.key(0), jnp.zeros((1, 5, 5, 2)))
  assert {k: p["slope"].shape for k, p in v["params"].items() if k.startswith("PReLU")} == {
      "PReLU_0": (4,), "PReLU_1": (3,)}
  assert float(v["params"]["PReLU_0"]["slope"][0]) == 0.5


def test_prelu_and_gelu_match_torch():
  torch = pytest.importorskip("torch")
  x = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
  tx = torch.tensor(x)
  np.testing.assert_allclose(activations.get("gelu")(jnp.asarray(x)), torch.nn.functional.gelu(tx).numpy(),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(activations.get("gelu(approximate=True)")(jnp.asarray(x)),
                             torch.nn.functional.gelu(tx, approximate="tanh").numpy(), rtol=1e-5, atol=1e-6)
  weight = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
  np.testing.assert_allclose(
      activations.PReLU().apply({"params": {"slope": jnp.asarray(weight.numpy())}}, jnp.asarray(x)),
      torch.nn.functional.prelu(tx, weight).numpy(), rtol=1e-6)


def test_names_and_callables():
  assert activations.get("relu") is jax.nn.relu
  assert activations.get(jnp.sin) is jnp.sin  # a callable passes through
  assert {"relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "swish", "relu6", "crelu"} <= set(
      activations.names())
