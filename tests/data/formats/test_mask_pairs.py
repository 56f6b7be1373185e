"""Folders of image/mask pairs: class-index masks, classes, splits and errors."""

import numpy as np

from tests.data.formats import writers
from tests.data.formats.expect import one_line_error
from vision_jax.data import formats



def _write(root, names=("a", "b", "c"), size=(6, 4)):
  masks = {}
  for n, name in enumerate(names):
    writers.write_image(f"{root}/images/{name}.png", writers.random_image(*size, seed=n))
    mask = np.random.default_rng(n).integers(0, 3 + n, size[::-1]).astype(np.uint8)
    mask[0, 0] = 255
    writers.write_image(f"{root}/masks/{name}.png", mask)
    masks[name] = mask
  return masks


def test_masks_load_as_class_indices_with_classes_from_the_masks(tmp_path):
  masks = _write(str(tmp_path))
  source, spec = formats.load("mask_pairs", str(tmp_path), "all")
  assert spec.image_shape == (4, 6, 3) and spec.features["semantic_mask"].shape == (4, 6)
  assert spec.features["semantic_mask"].num_classes == 5  # values 0..4 in mask c, 255 ignored
  for n, name in enumerate(("a", "b", "c")):
    np.testing.assert_array_equal(source[n]["semantic_mask"], masks[name])
    np.testing.assert_array_equal(source[n]["image"], writers.random_image(6, 4, seed=n))


def test_classes_txt_names_the_classes_and_bounds_the_values(tmp_path):
  _write(str(tmp_path))
  writers.write_text(str(tmp_path / "classes.txt"), "sky\nroad\nbuilding\n")
  source, spec = formats.load("mask_pairs", str(tmp_path), "all")
  assert spec.features["semantic_mask"].class_names == ("sky", "road", "building")
  source[0]
  with one_line_error("mask .*c.png has class 4 but there are 3 classes"):
    source[2]


def test_seeded_split_is_a_partition(tmp_path):
  _write(str(tmp_path), names=tuple("abcdefghij"))
  files = lambda split: [r[0] for r in formats.load("mask_pairs", str(tmp_path), split, seed=1)[0].records]
  train, validation = files("train"), files("validation")
  assert len(validation) == 2 and sorted(train + validation) == files("all")


def test_bad_pairs_raise_one_line(tmp_path):
  _write(str(tmp_path))
  writers.write_image(str(tmp_path / "masks" / "b.png"), np.zeros((4, 5), np.uint8))
  with one_line_error("mask .*b.png is 5x4 but its image .*b.png is 6x4"):
    formats.load("mask_pairs", str(tmp_path), "all")
  (tmp_path / "masks" / "b.png").unlink()
  with one_line_error("image .*b.png has no mask .*b.png"):
    formats.load("mask_pairs", str(tmp_path), "all")
  writers.write_image(str(tmp_path / "masks" / "b.png"), writers.random_image(6, 4))
  with one_line_error("single-channel"):
    formats.load("mask_pairs", str(tmp_path), "all")
  with one_line_error("elsewhere/images does not exist"):
    formats.load("mask_pairs", str(tmp_path / "elsewhere"), "all")
