"""COCO polygon and RLE decoding against pycocotools.mask on random shapes."""

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from tests.data.formats.expect import one_line_error
from vision_jax.data.formats import rle

NUM_SHAPES = 300


def _random_polygon(rng, height, width):
  points = rng.integers(3, 14)
  xy = np.stack([rng.uniform(-2, width + 2, points), rng.uniform(-2, height + 2, points)], axis=1)
  if rng.random() < 0.3:  # integer vertices hit the pixel-centre columns exactly
    xy = np.round(xy)
  return xy.ravel().tolist()


def _reference_polygons(polygons, height, width):
  return coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(polygons, height, width)))


def test_polygons_match_pycocotools():
  rng = np.random.default_rng(0)
  worst = 0
  for _ in range(NUM_SHAPES):
    height, width = (int(v) for v in rng.integers(4, 48, 2))
    polygons = [_random_polygon(rng, height, width) for _ in range(rng.integers(1, 3))]
    ours = rle.segmentation_to_mask(polygons, height, width, "test")
    reference = _reference_polygons(polygons, height, width)
    assert ours.shape == reference.shape and ours.dtype == np.uint8
    worst = max(worst, int(np.abs(ours.astype(int) - reference).max()))
  assert worst == 0


def test_a_triangle_is_not_empty_or_full():
  mask = rle.segmentation_to_mask([[1, 1, 30, 2, 10, 25]], 32, 32, "test")
  assert 0 < mask.sum() < 32 * 32  # guards against a reference and a decoder that agree on nothing
  np.testing.assert_array_equal(mask, _reference_polygons([[1, 1, 30, 2, 10, 25]], 32, 32))


def test_compressed_rle_matches_pycocotools():
  rng = np.random.default_rng(1)
  for _ in range(NUM_SHAPES):
    height, width = (int(v) for v in rng.integers(1, 48, 2))
    mask = (rng.random((height, width)) < rng.uniform(0.05, 0.95)).astype(np.uint8)
    encoded = coco_mask.encode(np.asfortranarray(mask))
    segmentation = {"size": [height, width], "counts": encoded["counts"].decode("ascii")}
    ours = rle.segmentation_to_mask(segmentation, height, width, "test")
    np.testing.assert_array_equal(ours, coco_mask.decode(encoded))
    np.testing.assert_array_equal(ours, mask)


def _column_major_runs(mask):
  flat = mask.T.ravel()
  edges = np.flatnonzero(np.diff(flat)) + 1
  runs = np.diff(np.concatenate([[0], edges, [flat.size]]))
  return ([0] if flat[0] else []) + runs.tolist()


def test_uncompressed_rle_matches_pycocotools():
  rng = np.random.default_rng(2)
  for _ in range(NUM_SHAPES):
    height, width = (int(v) for v in rng.integers(1, 48, 2))
    mask = (rng.random((height, width)) < rng.uniform(0.05, 0.95)).astype(np.uint8)
    segmentation = {"size": [height, width], "counts": _column_major_runs(mask)}
    ours = rle.segmentation_to_mask(segmentation, height, width, "test")
    reference = coco_mask.decode(coco_mask.frPyObjects(segmentation, height, width))
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(ours, mask)


def test_empty_segmentation_is_an_empty_mask():
  np.testing.assert_array_equal(rle.segmentation_to_mask([], 3, 5, "test"), np.zeros((3, 5), np.uint8))


@pytest.mark.parametrize("segmentation, message", [
    ({"size": [4, 5], "counts": [3, 2]}, "malformed segmentation .*add up to 5 pixels"),
    ({"size": [4, 5], "counts": "0P"}, "malformed segmentation .*ends inside a count"),  # 'P' continues
    ({"counts": [20]}, "malformed segmentation .*KeyError"),  # no size
    ([[1, 2, 3, 4]], "malformed segmentation .*4 coordinates"),  # a polygon of 2 points
    ({"size": [5, 4], "counts": [20]}, "RLE mask is 5x4"),  # another size than the image
])
def test_malformed_segmentations_raise_one_line(segmentation, message):
  with one_line_error(message) as raised:
    rle.segmentation_to_mask(segmentation, 4, 5, "ann.json annotation 7")
  assert "annotation 7" in str(raised.value)
