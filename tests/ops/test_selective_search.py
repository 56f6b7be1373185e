"""Selective search: hand-made images, similarities and histograms against hand-computed NumPy values, the merge
order of the hierarchy, the paper's ranking, and colour spaces against scikit-image (fixture made by
fixtures/selective_search/make_felzenszwalb.py)."""

import os

import numpy as np
import pytest

from vision_jax.errors import DataError
from vision_jax.ops import selective_search as ss
from vision_jax.ops import selective_search_features as features

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "selective_search", "felzenszwalb.npz")


def two_squares():
  """uint8 [48, 48, 3]: a red square at rows 4..15, cols 5..16 and a green one at rows 24..41, cols 20..43."""
  image = np.zeros((48, 48, 3), np.uint8)
  image[4:16, 5:17] = (220, 30, 30)
  image[24:42, 20:44] = (30, 200, 60)
  return image


@pytest.mark.parametrize("mode", ["single", "fast"])
def test_two_flat_squares_give_their_boxes(mode):
  boxes = ss.selective_search(two_squares(), mode=mode, sigma=0.0)
  rows = {tuple(b) for b in boxes.tolist()}
  assert {(5.0, 4.0, 17.0, 16.0), (20.0, 24.0, 44.0, 42.0), (0.0, 0.0, 48.0, 48.0)} <= rows
  assert boxes.dtype == np.float32 and boxes.shape[1] == 4
  assert len(rows) == len(boxes)  # no duplicates


def test_two_squares_with_smoothing_are_found_within_a_pixel():
  boxes = ss.selective_search(two_squares(), mode="single", seed=3)
  for want in ([5, 4, 17, 16], [20, 24, 44, 42]):
    assert np.abs(boxes - np.array(want)).max(1).min() <= 1.0


def test_similarities_by_hand():
  a, b = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
  assert ss.histogram_intersection(a, b) == pytest.approx(0.2 + 0.3 + 0.2)
  assert ss.size_similarity(10.0, 20.0, 100) == pytest.approx(0.7)
  # 2x2 region at the origin and a 2x2 region two columns right: hull 5 x 2 = 10, gap 10 - 4 - 4 = 2
  fill = ss.fill_similarity(np.array([0.0, 0.0, 2.0, 2.0]), np.array([3.0, 0.0, 5.0, 2.0]), 4.0, 4.0, 100)
  assert fill == pytest.approx(0.98)


def test_colour_histograms_match_numpy_histogram():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, (9, 7))
  colour = rng.uniform(0, 1, (9, 7, 3))
  hist = features.colour_histograms(labels, colour, 3)
  for region in range(3):
    pixels = colour[labels == region]
    want = np.concatenate([np.histogram(pixels[:, c], bins=25, range=(0, 1))[0] for c in range(3)])
    np.testing.assert_allclose(hist[region], want / want.sum())


def test_texture_responses_of_a_ramp_by_hand():
  ramp = np.tile(np.arange(16, dtype=np.float64), (12, 1))[:, :, None] * 0.05  # d/dx = 0.05, d/dy = 0
  responses = features.oriented_gradients(ramp)[4:-4, 4:-4, 0]
  s = np.sqrt(0.5) * 0.05
  want = [0.05, s, 0.0, 0.0, 0.0, 0.0, 0.0, s]  # 0, 45, 90, 135, 180, 225, 270, 315 degrees
  np.testing.assert_allclose(responses, np.broadcast_to(want, responses.shape), atol=1e-5)
  binned = features.texture_bins(np.random.default_rng(1).uniform(size=(10, 10, 3)))
  assert binned.shape == (10, 10, 3 * 8) and binned.min() == 0 and binned.max() == 9


def test_region_boxes_and_adjacency_by_hand():
  labels = np.array([[0, 0, 1], [2, 2, 1], [2, 3, 3]])
  sizes, boxes = features.region_boxes(labels, 4)
  np.testing.assert_array_equal(sizes, [2, 2, 3, 2])
  np.testing.assert_array_equal(boxes, [[0, 0, 2, 1], [2, 0, 3, 2], [0, 1, 2, 3], [1, 2, 3, 3]])
  # 8-connected: 0-1, 0-2, 1-2 (diagonal), 1-3, 2-3; 0 and 3 do not touch
  np.testing.assert_array_equal(features.adjacent_pairs(labels), [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]])


def test_colour_spaces_match_scikit_image():
  with np.load(FIXTURE, allow_pickle=False) as data:
    rgb, hsv, lab = data["colours_rgb"][None], data["colours_hsv"], data["colours_lab"]
  np.testing.assert_allclose(features.convert_colour(rgb, "hsv")[0], hsv, atol=1e-12)
  scaled = np.stack([lab[:, 0] / 100, (lab[:, 1] + 128) / 255, (lab[:, 2] + 128) / 255], 1)
  np.testing.assert_allclose(features.convert_colour(rgb, "lab")[0], scaled, atol=1e-4)  # measured 1.8e-5
  rgi = features.convert_colour(rgb, "rgi")[0]
  np.testing.assert_allclose(rgi[1:], np.concatenate([rgb[0, 1:, :2] / rgb[0, 1:].sum(1, keepdims=True),
                                                      rgb[0, 1:].mean(1, keepdims=True)], 1))
  np.testing.assert_allclose(rgi[0], [1 / 3, 1 / 3, 0])  # black


STRIPES = np.repeat(np.array([0, 1, 2, 2, 2]), 5).reshape(5, 5)  # rows: region 0, region 1, then 3 rows of 2


def test_hierarchy_merges_the_most_similar_pair_first():
  hierarchy = ss.hierarchical_grouping(STRIPES, ("size",))
  # size similarity: (0, 1) 1 - 10/25 = 0.6, (1, 2) 1 - 20/25 = 0.2; then (2, 3) 1 - 25/25 = 0
  np.testing.assert_array_equal(hierarchy.merges, [[0, 1], [2, 3]])
  np.testing.assert_allclose(hierarchy.similarities, [0.6, 0.0])
  np.testing.assert_array_equal(hierarchy.boxes, [[0, 0, 5, 1], [0, 1, 5, 2], [0, 2, 5, 5], [0, 0, 5, 2],
                                                  [0, 0, 5, 5]])


def test_hierarchy_merges_histograms_by_size():
  colour = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.2, 0.8]])
  hierarchy = ss.hierarchical_grouping(STRIPES, ("colour",), colour_hist=colour)
  # (0, 1): 0, (1, 2): 0.5 + 0.2 = 0.7 -> merge (1, 2) first into (5 * c1 + 15 * c2) / 20 = (0, 0.275, 0.725)
  np.testing.assert_array_equal(hierarchy.merges, [[1, 2], [0, 3]])
  np.testing.assert_allclose(hierarchy.similarities, [0.7, 0.0])
  colour[0] = [0.5, 0.5, 0.0]
  hierarchy = ss.hierarchical_grouping(STRIPES, ("colour", "size"), colour_hist=colour)
  # (0, 1): 0.5 + 0.6 = 1.1 > (1, 2): 0.7 + 0.2 = 0.9; then (2, 3): min((0, .2, .8), (.25, .5, .25)) = 0.45, + 0
  np.testing.assert_allclose(hierarchy.similarities, [1.1, 0.45])
  with pytest.raises(DataError, match="colour_hist"):
    ss.hierarchical_grouping(STRIPES, ("colour",))


def test_ranking_is_position_times_random_and_drops_repeats():
  first = np.array([[0, 0, 1, 1], [1, 1, 2, 2], [0, 0, 2, 2]], np.float64)
  second = np.array([[0, 0, 1, 1], [0, 0, 2, 2]], np.float64)
  ranked = ss.rank_proposals([first, second], np.random.default_rng(7))
  u = np.random.default_rng(7).random(5)
  values = np.array([3 * u[0], 2 * u[1], 1 * u[2], 2 * u[3], 1 * u[4]])  # the last created is position 1
  pooled = np.concatenate([first, second])[np.argsort(values)]
  want = [b for i, b in enumerate(pooled.tolist()) if b not in pooled[:i].tolist()]
  np.testing.assert_array_equal(ranked, want)
  assert len(ranked) == 3


def test_modes_and_bad_options():
  assert len(ss.strategies("single")) == 1 and len(ss.strategies("fast")) == 8
  assert len(ss.strategies("quality")) == 80
  assert {s.colour_space for s in ss.strategies("quality")} == {"hsv", "lab", "rgi", "h", "i"}
  with pytest.raises(DataError, match="mode"):
    ss.strategies("best")
  with pytest.raises(DataError, match="colour space"):
    ss.Strategy("xyz")
  with pytest.raises(DataError, match="similarities"):
    ss.Strategy("hsv", 100.0, ("shape",))
  with pytest.raises(DataError, match="image"):
    ss.selective_search(np.zeros((4, 4, 2)))


def test_custom_strategies_seed_and_max_proposals():
  image = two_squares()
  chosen = (ss.Strategy("rgi", 50.0, ("fill",)), ss.Strategy("i", 50.0, ("size", "texture")))
  boxes = ss.selective_search(image, strategy_list=chosen, sigma=0.0, seed=1)
  again = ss.selective_search(image, strategy_list=chosen, sigma=0.0, seed=1)
  np.testing.assert_array_equal(boxes, again)
  assert len(ss.selective_search(image, strategy_list=chosen, sigma=0.0, max_proposals=2)) == 2
  assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 48).all() and (boxes[:, 2:] > boxes[:, :2]).all()
  grey = ss.selective_search(image.mean(-1).astype(np.uint8), mode="single", sigma=0.0)
  assert {(5.0, 4.0, 17.0, 16.0), (20.0, 24.0, 44.0, 42.0)} <= {tuple(b) for b in grey.tolist()}


def test_flat_image_gives_the_whole_image():
  np.testing.assert_array_equal(ss.selective_search(np.full((8, 6), 90, np.uint8), mode="fast"), [[0, 0, 6, 8]])
