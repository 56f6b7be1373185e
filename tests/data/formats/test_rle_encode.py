"""COCO RLE encoding (`rle.encode_mask`) against pycocotools.mask.encode: random, blocky and edge-case masks."""

import numpy as np
import pytest

from vision_jax.data.formats import rle
from vision_jax.errors import DataError

coco_mask = pytest.importorskip("pycocotools.mask")


def _reference(mask):
  encoded = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
  return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def _masks(rng):
  """Speckled masks (short runs), blocky ones (runs of thousands: several 5-bit groups and negative
  differences), a large image, and the edge cases: empty, full, set first pixel, zero-size."""
  for _ in range(150):
    h, w = (int(v) for v in rng.integers(1, 40, 2))
    yield rng.random((h, w)) < rng.uniform(0.02, 0.98)
  for _ in range(60):
    h, w = (int(v) for v in rng.integers(20, 300, 2))
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 6)):
      y, x = rng.integers(0, h), rng.integers(0, w)
      mask[y:y + rng.integers(1, h), x:x + rng.integers(1, w)] ^= True
    yield mask
  yield rng.random((1200, 900)) < 0.001
  yield np.zeros((7, 5), bool)
  yield np.ones((7, 5), bool)
  corner = np.zeros((6, 6), bool)
  corner[0, 0] = True
  yield corner
  yield np.zeros((0, 5), bool)


def test_encode_mask_equals_pycocotools():
  rng = np.random.default_rng(0)
  for mask in _masks(rng):
    ours = rle.encode_mask(mask)
    assert ours == _reference(mask), mask.shape
    assert isinstance(ours["counts"], str)


def test_encode_round_trips_through_pycocotools_decode():
  mask = np.random.default_rng(1).random((33, 47)) < 0.4
  ours = rle.encode_mask(mask)
  np.testing.assert_array_equal(coco_mask.decode({"size": ours["size"], "counts": ours["counts"].encode()}), mask)
  np.testing.assert_array_equal(rle.segmentation_to_mask(ours, 33, 47, "test"), mask)


def test_counts_of_a_hand_worked_mask():
  # Column-major: column 0 = 0,1,1; column 1 = 1,0,0 -> runs 1 zero, 3 ones, 2 zeros.
  mask = np.array([[0, 1], [1, 0], [1, 0]], bool)
  np.testing.assert_array_equal(rle.mask_to_counts(mask), [1, 3, 2])
  np.testing.assert_array_equal(rle.mask_to_counts(np.ones((2, 2))), [0, 4])
  # 1 -> '1'; 3 -> '3'; 2 -> '2' (the first three counts are written as they are).
  assert rle.encode_counts_string(np.array([1, 3, 2])) == "132"


def test_encode_mask_rejects_stacks():
  with pytest.raises(DataError, match="one at a time"):
    rle.encode_mask(np.zeros((2, 4, 4), bool))
