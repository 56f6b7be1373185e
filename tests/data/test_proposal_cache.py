"""The proposal cache: file layout and round trip, padding, building (counts, equality with selective search),
and the table that serves batches of images by their pixels."""

import os

import numpy as np
import pytest

from vision_jax.data import proposal_cache as pc
from vision_jax.errors import DataError
from vision_jax.ops.selective_search import selective_search


def _scene(seed: int, size: int = 24) -> np.ndarray:
  """A small uint8 [size, size, 1] image: two bright rectangles on black at seeded places."""
  rng = np.random.default_rng(seed)
  image = np.zeros((size, size, 1), np.uint8)
  for value in (120, 250):
    y, x = rng.integers(0, size - 8, 2)
    h, w = rng.integers(4, 8, 2)
    image[y:y + h, x:x + w] = value
  return image


SCENES = [_scene(i) for i in range(5)]


def test_cache_path_is_keyed_by_dataset_split_mode_and_index(tmp_path):
  path = pc.cache_path(str(tmp_path), "voc/2007", "train", "fast", 42)
  assert path == os.path.join(str(tmp_path), "voc_2007", "train", "fast", "000042.npz")


def test_saved_proposals_load_back_without_pickle(tmp_path):
  boxes = np.array([[1, 2, 3, 4], [0.5, 0, 9, 7.25]], np.float32)
  path = str(tmp_path / "a" / "b.npz")
  pc.save_proposals(path, boxes)
  with np.load(path, allow_pickle=False) as data:  # a plain array, readable without pickle
    np.testing.assert_array_equal(data["boxes"], boxes)
  np.testing.assert_array_equal(pc.load_proposals(path), boxes)
  assert os.listdir(tmp_path / "a") == ["b.npz"]  # no temporary file left behind


def test_a_broken_cache_file_is_one_line_naming_it(tmp_path):
  path = tmp_path / "bad.npz"
  path.write_bytes(b"not an npz")
  with pytest.raises(DataError) as error:
    pc.load_proposals(str(path))
  assert str(path) in str(error.value) and "delete it" in str(error.value) and "\n" not in str(error.value)


def test_pad_proposals_truncates_and_pads_with_a_mask():
  boxes = np.arange(12, dtype=np.float32).reshape(3, 4)
  padded, valid = pc.pad_proposals(boxes, 5)
  np.testing.assert_array_equal(padded, np.concatenate([boxes, np.zeros((2, 4), np.float32)]))
  np.testing.assert_array_equal(valid, [True, True, True, False, False])
  padded, valid = pc.pad_proposals(boxes, 2)
  np.testing.assert_array_equal(padded, boxes[:2])
  assert valid.all()


def test_image_digest_ignores_a_trailing_channel_axis_but_not_pixels():
  image = SCENES[0]
  assert pc.image_digest(image) == pc.image_digest(image[..., 0])
  other = image.copy()
  other[0, 0, 0] ^= 1
  assert pc.image_digest(other) != pc.image_digest(image)
  assert pc.image_digest(image.astype(np.float32)) != pc.image_digest(image)


def test_as_uint8_rescales_float_images_to_the_bytes_they_came_from():
  image = SCENES[1]
  np.testing.assert_array_equal(pc.as_uint8(image.astype(np.float32) / 255.0), image)
  full_range = np.array([[0, 17], [128, 255]], np.uint8)
  np.testing.assert_array_equal(pc.as_uint8(full_range * 0.02 - 7.0), full_range)  # standardised: min..max
  assert pc.as_uint8(np.full((4, 4, 1), -3.0, np.float32)).max() == 0


def test_build_computes_what_is_missing_and_equals_selective_search(tmp_path):
  pairs = list(enumerate(SCENES[:3]))
  first = pc.build(pairs[:2], str(tmp_path), "toy", "train", "single", processes=1)
  assert (first["computed"], first["cached"], first["processes"]) == (2, 0, 1)
  second = pc.build(pairs, str(tmp_path), "toy", "train", "single", processes=1)
  assert (second["computed"], second["cached"]) == (1, 2)
  for index, image in pairs:
    stored = pc.load_proposals(pc.cache_path(str(tmp_path), "toy", "train", "single", index))
    np.testing.assert_array_equal(stored, selective_search(image, mode="single", seed=index))


def test_build_refuses_an_unknown_mode(tmp_path):
  with pytest.raises(DataError, match="unknown selective search mode"):
    pc.build([(0, SCENES[0])], str(tmp_path), "toy", "train", "slowest")


def test_build_with_two_processes_matches_one(tmp_path):
  pairs = list(enumerate(SCENES))
  pc.build(pairs, str(tmp_path / "one"), "toy", "test", "single", processes=1)
  # The pool is capped at MAX_PROCESSES and at the images left to compute (the report says what ran).
  report = pc.build(pairs, str(tmp_path / "two"), "toy", "test", "single", processes=8)
  assert report["computed"] == len(pairs) and report["processes"] == pc.MAX_PROCESSES == 2
  assert pc.build(pairs, str(tmp_path / "two"), "toy", "test", "single", processes=8)["processes"] == 1
  for index, _ in pairs:
    np.testing.assert_array_equal(pc.load_proposals(pc.cache_path(str(tmp_path / "one"), "toy", "test", "single",
                                                                    index)),
                                  pc.load_proposals(pc.cache_path(str(tmp_path / "two"), "toy", "test", "single",
                                                                  index)))


def _records(images):
  return [{"image": image} for image in images]


def test_table_serves_split_images_by_pixels_and_marks_those_out_of_use(tmp_path):
  table = pc.ProposalTable(str(tmp_path), "toy", "single", 8, {"train": (_records(SCENES[:3]), 2),
                                                               "test": (_records(SCENES[3:]), 0)})
  foreign = _scene(99)
  images = np.stack([SCENES[1], SCENES[4], SCENES[2], foreign])
  boxes, valid, in_use = table.lookup(images)
  assert boxes.shape == (4, 8, 4) and valid.shape == (4, 8)
  np.testing.assert_array_equal(in_use, [True, True, False, True])  # train index 2 is beyond the 2 in use
  for row, (image, seed) in enumerate([(SCENES[1], 1), (SCENES[4], 1), (foreign, 0)]):
    row = [0, 1, 3][row]
    expected = selective_search(image, mode="single", seed=seed)[:8]
    np.testing.assert_array_equal(boxes[row, :len(expected)], expected)
    np.testing.assert_array_equal(valid[row], np.arange(8) < len(expected))
  assert not valid[2].any()
  # Split images were written to the cache under their own index (train 1, test 1); nothing else.
  written = sorted(os.path.relpath(os.path.join(d, f), tmp_path) for d, _, fs in os.walk(tmp_path) for f in fs)
  assert written == [os.path.join("toy", "test", "single", "000001.npz"),
                     os.path.join("toy", "train", "single", "000001.npz")]
  # A float model input ([0, 1] after to_float) of a foreign image gets the same proposals as its bytes.
  float_boxes, _, _ = table.lookup(foreign[None].astype(np.float32) / 255.0)
  np.testing.assert_array_equal(float_boxes[0], boxes[3])


def test_table_reads_the_cache_and_prebuilds_a_split_at_its_first_lookup(tmp_path):
  planted = np.array([[1, 1, 5, 5]], np.float32)
  pc.save_proposals(pc.cache_path(str(tmp_path), "toy", "train", "single", 0), planted)
  table = pc.ProposalTable(str(tmp_path), "toy", "single", 4, {"train": (_records(SCENES), 3)},
                           prebuild_processes=1)
  boxes, valid, _ = table.lookup(SCENES[0][None])
  np.testing.assert_array_equal(boxes[0, :1], planted)  # read from the file, not recomputed
  np.testing.assert_array_equal(valid[0], [True, False, False, False])
  assert table.build_reports["train"]["computed"] == 2 and table.build_reports["train"]["cached"] == 1
  for index in range(5):
    assert os.path.exists(pc.cache_path(str(tmp_path), "toy", "train", "single", index)) == (index < 3)
