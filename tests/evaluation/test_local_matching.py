"""Local matching of conv feature maps against a NumPy float64 loop and a hand-worked one-pixel shift."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from vision_jax.errors import ConfigError
from vision_jax.evaluation import local_matching
from vision_jax.models.embedding.siamese import EmbeddingNet


def _reference_similarities(queries, supports, radius):
  """Float64 loops: best cosine of each query location within +-radius in each support map."""
  n, h, w, _ = queries.shape
  out = np.full((n, len(supports), h, w), -np.inf)
  for i in range(n):
    for j in range(len(supports)):
      for y in range(h):
        for x in range(w):
          for yy in range(max(0, y - radius), min(h, y + radius + 1)):
            for xx in range(max(0, x - radius), min(w, x + radius + 1)):
              a, b = queries[i, y, x].astype(np.float64), supports[j, yy, xx].astype(np.float64)
              na, nb = np.linalg.norm(a), np.linalg.norm(b)
              cos = a @ b / (na * nb) if na > 0 and nb > 0 else 0.0
              out[i, j, y, x] = max(out[i, j, y, x], cos)
  return out


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_location_similarities_match_a_float64_loop(radius):
  rng = np.random.default_rng(0)
  queries = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
  supports = rng.normal(size=(2, 4, 5, 6)).astype(np.float32)
  supports[0, 1, 2] = 0.0  # an empty (all-zero) descriptor scores 0
  got = np.asarray(local_matching.location_similarities(queries, supports, radius))
  want = _reference_similarities(queries, supports, radius)
  assert np.max(np.abs(got - want)) < 1e-5
  scores = local_matching.local_score_matrix(queries, supports, radius)
  np.testing.assert_allclose(scores, want.mean((2, 3)), atol=1e-5)


def _stroke(shift):
  """A 7x7 one-channel map with an L-shaped stroke moved `shift` columns right."""
  image = np.zeros((7, 7, 1), np.float32)
  image[1:5, 2 + shift] = 1.0
  image[4, 2 + shift:5 + shift] = 1.0
  return image


def test_a_one_pixel_shift_matches_perfectly_within_radius_one():
  # Two-channel descriptors (stroke, background) so that every location has a direction to compare.
  def descriptors(image):
    return np.concatenate([image, 1.0 - image], -1)
  bar = np.zeros((7, 7, 1), np.float32)
  bar[1] = 1.0  # a horizontal bar along row 1
  query, same, other = descriptors(_stroke(1)), descriptors(_stroke(0)), descriptors(bar)
  supports = np.stack([same, other])
  # Radius 1: every query location finds its identical partner one column to the left: cosine 1 everywhere.
  np.testing.assert_allclose(local_matching.local_score_matrix(query[None], supports[:1], 1), [[1.0]], atol=1e-6)
  # Radius 0: the query's 6 stroke pixels and the support's 6 share only (4, 3) and (4, 4), so 4 + 4 locations
  # compare stroke with background (cosine 0) and 41 of the 49 score 1.
  np.testing.assert_allclose(local_matching.local_score_matrix(query[None], supports[:1], 0), [[41 / 49]], atol=1e-6)
  # Episode scores: against the bar, the query's stroke pixels (3, 3), (4, 3), (4, 4), (4, 5) have no stroke
  # within one row, so 45 of 49 locations score 1; the shifted query takes the unshifted stroke's class.
  scores = local_matching.episode_class_scores(np.stack([query, same, other]), np.array([[0]]),
                                               np.array([[[1], [2]]]), radius=1)
  np.testing.assert_allclose(scores, [[[1.0, 45 / 49]]], atol=1e-6)


def test_episode_class_scores_take_the_best_shot_per_location():
  rng = np.random.default_rng(1)
  maps = rng.normal(size=(7, 3, 3, 4)).astype(np.float32)
  queries, supports = np.array([[0, 1], [2, 3]]), np.array([[[4, 5], [6, 2]], [[1, 0], [5, 6]]])  # [E=2, W=2, K=2]
  got = local_matching.episode_class_scores(maps, queries, supports, radius=5)  # wider than the map: all of it
  for e in range(2):
    for qi, q in enumerate(queries[e]):
      for c in range(2):
        per_shot = _reference_similarities(maps[q][None], maps[supports[e, c]], 5)[0]  # [K, h, w]
        assert got[e, qi, c] == pytest.approx(per_shot.max(0).mean(), abs=1e-5)


def test_bad_settings_raise_config_errors():
  with pytest.raises(ConfigError, match="embedding.match"):
    local_matching.check_match("dn5", 1)
  with pytest.raises(ConfigError, match="embedding.radius"):
    local_matching.check_match("local", -1)


class _TinyBackbone(nn.Module):
  """1x1 conv (3 channels, no bias) -> flatten -> dense, like a zoo classifier's last conv block and head."""

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(3, (1, 1), use_bias=False, name="conv")(x)
    return nn.Dense(2, name="head")(x.reshape((x.shape[0], -1)))


def test_first_maps_unflatten_the_last_conv_block():
  rng = np.random.default_rng(5)
  images = rng.normal(size=(2, 4, 4, 2)).astype(np.float32)
  model = EmbeddingNet(_TinyBackbone(), normalize=False)
  variables = model.init(jax.random.PRNGKey(0), images)
  maps = model.apply(variables, images, layer="first_maps", method=EmbeddingNet.features)
  kernel = np.asarray(variables["params"]["backbone"]["conv"]["kernel"])[0, 0]  # [2, 3]
  np.testing.assert_allclose(np.asarray(maps), images @ kernel, rtol=1e-5, atol=1e-5)
  assert model.apply(variables, images).shape == (2, 2)
  wide = images[:, :3]  # 3 x 4 maps flatten to 36 values: not an s x s x 3 block
  wide_variables = model.init(jax.random.PRNGKey(0), wide)
  with pytest.raises(ConfigError, match="not square"):
    model.apply(wide_variables, wide, layer="first_maps", method=EmbeddingNet.features)
