"""Felzenszwalb segmentation against scikit-image's (fixture made by fixtures/selective_search/make_felzenszwalb.py)
and against hand-worked graphs."""

import os

import numpy as np
import pytest

from vision_jax.errors import DataError
from vision_jax.ops.felzenszwalb import felzenszwalb, filter1d, gaussian_kernel1d, gaussian_smooth, grid_edges

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "selective_search", "felzenszwalb.npz")


@pytest.fixture(scope="module")
def reference():
  with np.load(FIXTURE, allow_pickle=False) as data:
    return {k: data[k] for k in data.files}


def adjusted_rand_index(x, y):
  """Hubert & Arabie's ARI of two labelings, from their contingency table."""
  x = np.unique(x.ravel(), return_inverse=True)[1]
  y = np.unique(y.ravel(), return_inverse=True)[1]
  table = np.zeros((x.max() + 1, y.max() + 1))
  np.add.at(table, (x, y), 1)
  pairs = lambda n: n * (n - 1) / 2
  both, rows, cols, total = pairs(table).sum(), pairs(table.sum(1)).sum(), pairs(table.sum(0)).sum(), pairs(x.size)
  expected = rows * cols / total
  return (both - expected) / ((rows + cols) / 2 - expected)


def same_partition(x, y):
  """True when the two label maps split the pixels the same way (up to renaming the labels)."""
  pairs = np.unique(np.stack([x.ravel(), y.ravel()], 1), axis=0)
  return len(pairs) == len(np.unique(x)) == len(np.unique(y))


def _segment(reference, case):
  scale, sigma, min_size = reference[f"{case}_params"]
  return felzenszwalb(reference[f"{case}_image"], scale, sigma, int(min_size)), reference[f"{case}_labels"]


@pytest.mark.parametrize("case", ["exact_noise", "exact_gray_noise", "exact_rectangles", "exact_rectangles_k500"])
def test_same_partition_as_scikit_image_without_smoothing(reference, case):
  ours, theirs = _segment(reference, case)
  assert len(np.unique(theirs)) > 1
  assert same_partition(ours, theirs)


@pytest.mark.parametrize("case", ["blobs_small", "blobs_large_k", "blobs_gray"])
def test_agrees_with_scikit_image_with_smoothing(reference, case):
  ours, theirs = _segment(reference, case)
  assert adjusted_rand_index(ours, theirs) > 0.99  # measured 1.0 on all three


def test_gaussian_kernels_by_hand():
  kernel = gaussian_kernel1d(1.0)
  x = np.arange(-4, 5)
  np.testing.assert_allclose(kernel, np.exp(-x**2 / 2) / np.exp(-x**2 / 2).sum())
  derivative = gaussian_kernel1d(1.0, order=1)
  ramp = np.arange(20, dtype=np.float64)[None, :] * 3.0
  np.testing.assert_allclose(filter1d(ramp, derivative, 1)[0, 4:-4], 3.0, rtol=1e-4)
  np.testing.assert_allclose(derivative, x * np.exp(-x**2 / 2) / np.exp(-x**2 / 2).sum())
  assert len(gaussian_kernel1d(0.8)) == 2 * int(4 * 0.8 + 0.5) + 1


def test_filter_mirrors_the_border():
  signal = np.array([1.0, 2.0, 5.0, 3.0])
  kernel = np.array([0.25, 0.5, 0.25])
  # mirrored: 1 | 1 2 5 3 | 3
  want = [0.25 * 1 + 0.5 * 1 + 0.25 * 2, 0.25 * 1 + 0.5 * 2 + 0.25 * 5, 0.25 * 2 + 0.5 * 5 + 0.25 * 3,
          0.25 * 5 + 0.5 * 3 + 0.25 * 3]
  np.testing.assert_allclose(filter1d(signal, kernel, 0), want)
  image = np.random.default_rng(0).uniform(size=(5, 6, 2))
  np.testing.assert_array_equal(gaussian_smooth(image, 0.0), image)


def test_grid_edges_are_the_8_neighbourhood():
  a, b = grid_edges(2, 3)
  edges = {tuple(sorted(e)) for e in zip(a.tolist(), b.tolist())}
  # pixels 0 1 2 / 3 4 5
  assert edges == {(0, 1), (1, 2), (3, 4), (4, 5), (0, 3), (1, 4), (2, 5), (0, 4), (1, 5), (1, 3), (2, 4)}
  assert len(a) == 4 * 6 - 3 * 5 + 2


def test_merge_rule_is_weight_at_most_internal_plus_k_over_size():
  # Two 2x2 flat halves, contrast 1 on [0, 1]: each half has Int = 0 and 4 pixels, so MInt = k / 255 / 4 and the
  # halves join exactly when k >= 1020 (the paper's w <= MInt).
  image = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
  assert len(np.unique(felzenszwalb(image, scale=1020.0, sigma=0, min_size=0))) == 1
  assert len(np.unique(felzenszwalb(image, scale=1019.0, sigma=0, min_size=0))) == 2


def test_diagonal_neighbours_connect_and_labels_follow_raster_order():
  checker = np.array([[1.0, 0.0], [0.0, 1.0]])
  np.testing.assert_array_equal(felzenszwalb(checker, scale=1.0, sigma=0, min_size=0), [[0, 1], [1, 0]])


def test_min_size_merges_small_regions():
  image = np.zeros((5, 5))
  image[2, 2] = 1.0
  assert len(np.unique(felzenszwalb(image, scale=1.0, sigma=0, min_size=0))) == 2
  assert len(np.unique(felzenszwalb(image, scale=1.0, sigma=0, min_size=2))) == 1


def test_uint8_is_scaled_to_unit_range():
  image = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
  np.testing.assert_array_equal(felzenszwalb(image, 200.0, 0.5, 3), felzenszwalb(image / 255.0, 200.0, 0.5, 3))


def test_bad_input_raises():
  with pytest.raises(DataError, match="shape"):
    felzenszwalb(np.zeros((2, 3, 4, 1)))
  with pytest.raises(DataError, match=">= 0"):
    felzenszwalb(np.zeros((4, 4)), scale=-1.0)
