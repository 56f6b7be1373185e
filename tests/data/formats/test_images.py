"""Image and mask file reading: channel conversions against hand-computed pixels, unreadable files."""

import numpy as np
from PIL import Image

from tests.data.formats import writers
from tests.data.formats.expect import one_line_error
from vision_jax.data.formats import images


def _gray(seed=0):
  return np.random.default_rng(seed).integers(0, 256, (5, 7), dtype=np.uint8)


def test_grayscale_is_repeated_to_rgb_and_kept_for_one_channel(tmp_path):
  gray = _gray()
  writers.write_image(str(tmp_path / "g.png"), gray)
  np.testing.assert_array_equal(images.read_image(str(tmp_path / "g.png"), 3), np.repeat(gray[..., None], 3, -1))
  np.testing.assert_array_equal(images.read_image(str(tmp_path / "g.png"), 1), gray[..., None])


def test_rgba_drops_alpha_without_compositing(tmp_path):
  rgba = np.random.default_rng(1).integers(0, 256, (4, 6, 4), dtype=np.uint8)
  rgba[0, 0, 3] = 0  # a transparent pixel keeps its colour
  writers.write_image(str(tmp_path / "a.png"), rgba)
  np.testing.assert_array_equal(images.read_image(str(tmp_path / "a.png"), 3), rgba[..., :3])


def test_rgb_to_one_channel_is_itu_luma(tmp_path):
  rgb = writers.random_image(6, 4, 2)
  writers.write_image(str(tmp_path / "c.png"), rgb)
  luma = (rgb.astype(np.float64) @ [0.299, 0.587, 0.114])[..., None]
  assert np.abs(images.read_image(str(tmp_path / "c.png"), 1) - luma).max() <= 1  # PIL rounds in fixed point


def test_palette_images_are_looked_up(tmp_path):
  palette = np.random.default_rng(3).integers(0, 256, (256, 3), dtype=np.uint8)
  indices = np.random.default_rng(4).integers(0, 256, (5, 6), dtype=np.uint8)
  writers.write_image(str(tmp_path / "p.png"), writers.palette_image(indices, palette))
  writers.write_image(str(tmp_path / "p.gif"), writers.palette_image(indices, palette))
  np.testing.assert_array_equal(images.read_image(str(tmp_path / "p.png"), 3), palette[indices])
  np.testing.assert_array_equal(images.read_image(str(tmp_path / "p.gif"), 3), palette[indices])


def test_sixteen_bit_gray_keeps_the_high_byte(tmp_path):
  values = np.random.default_rng(5).integers(0, 65536, (4, 5)).astype(np.uint16)
  Image.fromarray(values).save(str(tmp_path / "d.png"))
  np.testing.assert_array_equal(images.read_image(str(tmp_path / "d.png"), 1), (values >> 8)[..., None])


def test_masks_are_palette_indices(tmp_path):
  indices = np.random.default_rng(6).integers(0, 21, (5, 6)).astype(np.uint8)
  indices[0] = 255
  palette = np.random.default_rng(7).integers(0, 256, (256, 3), dtype=np.uint8)
  writers.write_image(str(tmp_path / "m.png"), writers.palette_image(indices, palette))
  np.testing.assert_array_equal(images.read_mask(str(tmp_path / "m.png")), indices)


def test_unreadable_files_raise_one_line(tmp_path):
  (tmp_path / "bad.png").write_bytes(b"not an image")
  for read in (lambda p: images.read_image(p, 3), images.read_mask, images.image_size):
    for path in (str(tmp_path / "bad.png"), str(tmp_path / "missing.png")):
      with one_line_error("cannot read (image|mask) .*; replace or remove the file") as raised:
        read(path)
      assert path in str(raised.value)


def test_truncated_file_raises_when_decoded(tmp_path):
  writers.write_image(str(tmp_path / "t.jpg"), writers.random_image(64, 64))
  data = (tmp_path / "t.jpg").read_bytes()
  (tmp_path / "t.jpg").write_bytes(data[:len(data) // 2])
  assert images.image_size(str(tmp_path / "t.jpg")) == (64, 64)  # the header is intact
  with one_line_error("cannot read image .*t.jpg"):
    images.read_image(str(tmp_path / "t.jpg"), 3)


def test_colour_mask_raises_one_line(tmp_path):
  writers.write_image(str(tmp_path / "rgb.png"), writers.random_image(4, 4))
  with one_line_error("single-channel"):
    images.read_mask(str(tmp_path / "rgb.png"))


def test_shared_image_shape():
  assert images.shared_image_shape([(7, 5), (7, 5)], 3) == (5, 7, 3)
  assert images.shared_image_shape([(7, 5), (5, 7)], 1) == (0, 0, 1)
