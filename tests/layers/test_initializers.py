"""Initializers against their definitions (variance scale / fan, uniform limits, orthogonality, truncation,
constants) on large kernels, and against Keras' initializers of the same name."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.layers import initializers

SHAPE = (3, 3, 128, 256)  # a conv kernel [kh, kw, C_in, C_out]: 294,912 draws
FAN_IN, FAN_OUT = 3 * 3 * 128, 3 * 3 * 256
# Standard deviation of N(0, 1) truncated to [-2, 2]: sqrt(1 - 2 * 2 * phi(2) / (Phi(2) - Phi(-2))).
TRUNCATED_STD = math.sqrt(1 - 4 * math.exp(-2) / math.sqrt(2 * math.pi) / math.erf(2 / math.sqrt(2)))
# name -> (scale, fan) of the variance-scaling definition: variance = scale / fan.
VARIANCE = {"he": (2.0, FAN_IN), "glorot": (1.0, (FAN_IN + FAN_OUT) / 2), "lecun": (1.0, FAN_IN)}


def _draw(spec, shape=SHAPE, seed=0):
  return np.asarray(initializers.get(spec)(jax.random.key(seed), shape, jnp.float32), np.float64)


@pytest.mark.parametrize("family", sorted(VARIANCE))
def test_uniform_variance_scaling(family):
  scale, fan = VARIANCE[family]
  w = _draw(f"{family}_uniform")
  limit = math.sqrt(3 * scale / fan)  # U(-limit, limit) has variance limit^2 / 3 = scale / fan
  assert np.abs(w).max() <= limit and np.abs(w).max() > 0.999 * limit
  assert abs(w.mean()) < 0.01 * limit
  assert w.var() == pytest.approx(scale / fan, rel=0.02)


@pytest.mark.parametrize("family", sorted(VARIANCE))
def test_normal_variance_scaling_is_truncated_at_two_sigma(family):
  scale, fan = VARIANCE[family]
  w = _draw(f"{family}_normal")
  assert w.var() == pytest.approx(scale / fan, rel=0.02)
  sigma = math.sqrt(scale / fan) / TRUNCATED_STD  # the untruncated normal's sigma, corrected for the cut
  assert np.abs(w).max() <= 2 * sigma and np.abs(w).max() > 1.99 * sigma


def test_aliases():
  for alias, name in (("kaiming_normal", "he_normal"), ("kaiming_uniform", "he_uniform"),
                      ("xavier_normal", "glorot_normal"), ("xavier_uniform", "glorot_uniform")):
    np.testing.assert_array_equal(_draw(alias, (8, 8)), _draw(name, (8, 8)))


def test_fans_follow_the_dense_convention_too():
  # A dense kernel [C_in, C_out]: fan_in = C_in.
  w = _draw("he_uniform", (1000, 300))
  assert np.abs(w).max() <= math.sqrt(6 / 1000) and w.var() == pytest.approx(2 / 1000, rel=0.03)


def test_truncated_normal_stays_within_two_stddev():
  w = _draw("truncated_normal(stddev=0.02)")
  assert np.abs(w).max() <= 0.04 and np.abs(w).max() > 0.0399
  # No variance correction: the spread is that of N(0, 0.02^2) cut at +-2 sigma.
  assert w.std() == pytest.approx(0.02 * TRUNCATED_STD, rel=0.01)


def test_normal_stddev():
  assert _draw("normal(stddev=0.05)").std() == pytest.approx(0.05, rel=0.01)


@pytest.mark.parametrize("shape", [(256, 64), (3, 3, 16, 32), (32, 128)])
def test_orthogonal(shape):
  w = _draw("orthogonal", shape).reshape(-1, shape[-1])
  if w.shape[0] >= w.shape[1]:
    np.testing.assert_allclose(w.T @ w, np.eye(w.shape[1]), atol=1e-5)  # orthonormal columns
  else:
    np.testing.assert_allclose(w @ w.T, np.eye(w.shape[0]), atol=1e-5)  # orthonormal rows
  w2 = _draw("orthogonal(scale=2.0)", (64, 16))
  np.testing.assert_allclose(w2.T @ w2, 4 * np.eye(16), atol=1e-4)


def test_constants_are_exact():
  assert np.all(_draw("zeros", (5, 7)) == 0.0)
  assert np.all(_draw("ones", (5, 7)) == 1.0)
  assert np.all(_draw("constant(value=0.1)", (5, 7)) == np.float32(0.1))
  assert _draw("constant(value=-3)", (2,)).tolist() == [-3.0, -3.0]


def test_draws_match_jax_initializers():
  # The variance-scaling entries are JAX's own (truncated normals with the variance correction, as Keras).
  key = jax.random.key(3)
  for name in ("he_normal", "glorot_uniform", "lecun_normal", "orthogonal"):
    theirs = getattr(jax.nn.initializers, name)()(key, (6, 5))
    np.testing.assert_array_equal(initializers.get(name)(key, (6, 5)), theirs)


@pytest.mark.parametrize("name,keras_name", [("he_normal", "HeNormal"), ("he_uniform", "HeUniform"),
                                             ("glorot_normal", "GlorotNormal"), ("glorot_uniform", "GlorotUniform"),
                                             ("lecun_normal", "LecunNormal"), ("lecun_uniform", "LecunUniform")])
def test_same_distribution_as_keras(name, keras_name):
  os.environ.setdefault("KERAS_BACKEND", "jax")
  keras = pytest.importorskip("keras")
  theirs = np.asarray(getattr(keras.initializers, keras_name)(seed=0)(SHAPE), np.float64)
  ours = _draw(name)
  # Same fans for a conv kernel, same variance and the same support.
  assert ours.var() == pytest.approx(theirs.var(), rel=0.03)
  assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.01)
