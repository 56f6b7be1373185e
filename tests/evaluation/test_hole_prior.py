import numpy as np
import pytest
from scipy import ndimage

from vision_jax.errors import ConfigError
from vision_jax.evaluation import embedding as E
from vision_jax.evaluation import hole_prior


def _ring(canvas, center, radius, width=1.6):
  rows, cols = np.mgrid[:canvas.shape[0], :canvas.shape[1]]
  distance = np.hypot(rows - center[0], cols - center[1])
  canvas[np.abs(distance - radius) <= width / 2] = 255
  return canvas


def _stem(canvas, rows, col):
  canvas[rows[0]:rows[1], col - 1:col + 1] = 255
  return canvas


def _digit(kind: str) -> np.ndarray:
  """28 x 28 line drawings: a loop at the top ("9"), at the bottom ("6"), both ("8"), one tall loop ("0"), none."""
  canvas = np.zeros((28, 28), np.uint8)
  if kind == "9":
    return _stem(_ring(canvas, (9, 14), 5), (9, 25), 19)
  if kind == "6":
    return _stem(_ring(canvas, (19, 14), 5), (3, 19), 10)
  if kind == "8":
    return _ring(_ring(canvas, (8, 14), 4.5), (18.5, 14), 5)
  if kind == "0":
    rows, cols = np.mgrid[:28, :28]
    canvas[np.abs(np.hypot((rows - 14) / 10.0, (cols - 14) / 6.0) - 1.0) <= 0.12] = 255
    return canvas
  return _stem(canvas, (4, 24), 14)  # "1"


def test_holes_match_scipy_fill_holes_on_random_masks():
  rng = np.random.default_rng(0)
  ink = rng.random((40, 19, 23)) < 0.45
  ink[:20] = ndimage.binary_dilation(ink[:20], iterations=1)  # larger blobs: more and bigger holes
  ours = hole_prior.enclosed_background(ink)
  reference = np.stack([ndimage.binary_fill_holes(m) & ~m for m in ink])
  np.testing.assert_array_equal(ours, reference)
  assert reference.any(axis=(1, 2)).sum() >= 10  # the check is not vacuous


@pytest.mark.parametrize("kind, expected", [("9", [1, 0]), ("6", [0, 1]), ("8", [1, 1]), ("0", [1, 1]),
                                            ("1", [0, 0])])
def test_hole_bands_of_line_drawings(kind, expected):
  np.testing.assert_array_equal(hole_prior.hole_bands(_digit(kind)[None]), [expected])


def test_hole_bands_polarity_channels_blank_and_min_area():
  nine = _digit("9")
  light_page = np.repeat((255 - nine)[None, ..., None], 3, -1)  # dark strokes on white, RGB
  out = hole_prior.hole_bands(np.stack([nine[..., None].repeat(3, -1), light_page[0], np.zeros((28, 28, 3))]))
  np.testing.assert_array_equal(out, [[1, 0], [1, 0], [0, 0]])
  dot = np.zeros((1, 9, 9), np.uint8)
  dot[0, 2:7, 2:7] = 255
  dot[0, 4, 4] = 0  # a one-pixel hole in the middle row of the ink (the bottom band of two)
  np.testing.assert_array_equal(hole_prior.hole_bands(dot, min_area=1), [[0, 1]])
  np.testing.assert_array_equal(hole_prior.hole_bands(dot, min_area=3), [[0, 0]])
  np.testing.assert_array_equal(hole_prior.hole_bands(dot, min_area=1, bands=3), [[0, 1, 0]])


def test_graded_hole_bands_count_the_settings_under_which_a_loop_closes():
  nine = _digit("9").copy()
  nine[3:6, 13:16] = np.where(nine[3:6, 13:16] > 0, 100, 0)  # the loop's top joint drawn faint (100 of 255)
  assert hole_prior.hole_bands(nine[None], threshold=96.0).tolist() == [[1, 0]]  # closed below 100,
  assert hole_prior.hole_bands(nine[None], threshold=128.0).tolist() == [[0, 0]]  # open above
  # Thresholds 32, 64, 96 (of 5) see the loop closed; its area passes every minimum area (1, 3, 6).
  np.testing.assert_allclose(hole_prior.graded_hole_bands(nine[None]), [[3 / 5, 0.0]])
  dot = np.zeros((1, 9, 9), np.uint8)
  dot[0, 2:7, 2:7] = 255
  dot[0, 4, 4] = 0  # a one-pixel hole: it counts under min_area 1 only (1 of 3), at every threshold
  np.testing.assert_allclose(hole_prior.graded_hole_bands(dot), [[0.0, 1 / 3]])
  for kind in ("9", "6", "8", "0", "1"):  # solid strokes: the binary descriptor at every setting
    np.testing.assert_array_equal(hole_prior.graded_hole_bands(_digit(kind)[None]),
                                  hole_prior.hole_bands(_digit(kind)[None]))


def test_with_hole_penalty_subtracts_weighted_l1_to_the_support_mean():
  descriptors = np.array([[1, 0], [0, 0], [1, 1], [0, 1]], np.float64)
  base = lambda q, s: np.zeros(np.shape(q) + (np.shape(s)[1],))
  class_scores, pair_scores = hole_prior.with_hole_penalty(base, lambda a, b: np.ones((len(a), len(b))),
                                                           descriptors, 0.5)
  # One episode, queries rows 0 and 3; class A supports rows 1, 2 (mean [0.5, 0.5]); class B row 0 twice.
  out = class_scores(np.array([[0, 3]]), np.array([[[1, 2], [0, 0]]]))
  np.testing.assert_allclose(out, [[[-0.5 * 1.0, 0.0], [-0.5 * 1.0, -0.5 * 2.0]]])
  np.testing.assert_allclose(pair_scores(np.array([0]), np.array([1, 2, 3])), [[1 - 0.5, 1 - 0.5, 1 - 1.0]])


def test_embedding_metrics_with_holes_separate_classes_the_features_cannot():
  thumbs = np.stack([_digit("9")] * 12 + [_digit("1")] * 12)[..., None]
  labels = np.repeat([0, 1], 12)
  rng = np.random.default_rng(0)
  rows = {"embedding": rng.normal(size=(24, 8)), "label": labels, "thumb": thumbs}
  settings = dict(metric="cosine", episodes=((2, 1),), num_episodes=200, picture_points=24)
  plain = E.embedding_metrics(rows, E.EmbeddingEval(**settings))
  holes = E.embedding_metrics(rows, E.EmbeddingEval(holes=2.5, **settings))  # beyond the cosine scores' range 2
  assert plain["episodes_2way_1shot"] < 0.8  # random features
  assert holes["episodes_2way_1shot"] == 1.0 and holes["gallery_top1_enrol1"] == 1.0
  assert holes["verification_auc"] == plain["verification_auc"]  # verification scores the features alone
  # The transductive results carry the prior too, in the soft assignments and the final scores, for either rule.
  maps = rng.normal(size=(24, 3, 3, 4))
  for match in ("prototype", "local"):
    refine = dict(settings, refine_steps=2, match=match, radius=0)
    plain = E.embedding_metrics({**rows, "maps": maps}, E.EmbeddingEval(**refine))
    holes = E.embedding_metrics({**rows, "maps": maps}, E.EmbeddingEval(holes=2.5, **refine))
    assert plain["episodes_2way_1shot_transductive"] < 0.8 and holes["episodes_2way_1shot_transductive"] == 1.0
  with pytest.raises(ConfigError, match="needs the evaluated images"):
    E.embedding_metrics({"embedding": rows["embedding"], "label": labels}, E.EmbeddingEval(holes=1.0, **settings))
  with pytest.raises(ConfigError, match="embedding.holes=-0.1"):
    E.EmbeddingEval(holes=-0.1)
  with pytest.raises(ConfigError, match="embedding.hole_descriptor='soft'; use one of binary, graded"):
    E.EmbeddingEval(holes=0.1, hole_descriptor="soft")
  graded = E.embedding_metrics(rows, E.EmbeddingEval(holes=2.5, hole_descriptor="graded", **settings))
  assert graded["episodes_2way_1shot"] == 1.0  # solid strokes: graded descriptors equal the binary ones
