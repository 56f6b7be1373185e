"""Tukey's power transform of evaluated features against a NumPy float64 reference."""

import numpy as np
import pytest

from vision_jax.evaluation.power_transform import power_transform


@pytest.mark.parametrize("power", [0.5, 0.3, 2.0])
def test_power_transform_matches_float64_and_keeps_signs(power):
  features = np.random.default_rng(0).normal(size=(4, 3, 5)) * 3.0
  features[0, 0, :2] = 0.0
  reference = np.sign(features) * np.abs(features) ** power
  ours = np.asarray(power_transform(features.astype(np.float32), power))
  assert ours.shape == features.shape and ours.dtype == np.float32
  np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)
  assert np.all(ours[0, 0, :2] == 0.0)


def test_power_one_returns_the_features_unchanged():
  features = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
  assert power_transform(features, 1.0) is features


def test_square_roots_shrink_a_dominant_channel_in_the_cosine():
  # two non-negative descriptors that share one huge channel and differ in the small ones
  a, b = np.array([100.0, 4.0, 0.0]), np.array([100.0, 0.0, 4.0])
  def cosine(x, y):
    return x @ y / np.linalg.norm(x) / np.linalg.norm(y)
  ra, rb = (np.asarray(power_transform(v, 0.5), np.float64) for v in (a, b))
  assert cosine(ra, rb) < cosine(a, b) - 0.03  # the differing small channels now count (0.962 against 0.998)
  assert cosine(ra, rb) == pytest.approx(10.0 * 10.0 / (10.0 ** 2 + 2.0 ** 2), rel=1e-6)
