"""Geometric ops: exact identities, quarter turns and shears against NumPy/SciPy, boxes that follow the pixels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from vision_jax.data import augment
from vision_jax.data.augment import geometric, warp

KEY = jax.random.PRNGKey(0)


def _images(n=3, h=7, w=7, c=2, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(n, h, w, c)), jnp.float32)


@pytest.mark.parametrize("op", ["flip_lr(p=1.0)", "flip_ud(p=1.0)"])
def test_flipping_twice_is_the_identity(op):
  images = _images(h=6, w=5)
  once = augment.build(op)(KEY, images)
  axis = 2 if op.startswith("flip_lr") else 1
  np.testing.assert_array_equal(once, np.flip(np.asarray(images), axis))
  np.testing.assert_array_equal(augment.build(f"{op}|{op}")(KEY, images), images)


@pytest.mark.parametrize("degrees", [0.0, 360.0, -360.0])
def test_rotating_by_zero_or_a_full_turn_is_the_identity(degrees):
  images = _images(h=6, w=5)
  np.testing.assert_array_equal(augment.rotate_images(images, jnp.radians(jnp.full((3,), degrees))), images)


@pytest.mark.parametrize("size", [5, 6])
def test_quarter_turns_equal_rot90_exactly(size):
  images = _images(n=4, h=size, w=size)
  turns = np.array([1, 2, 3, -1])
  for interpolation in ("bilinear", "nearest"):
    order = warp.interpolation_order(interpolation)
    out = np.asarray(augment.rotate_images(images, jnp.asarray(turns * np.pi / 2, jnp.float32), order))
    ref = np.stack([np.rot90(np.asarray(image), k) for image, k in zip(images, turns)])
    np.testing.assert_array_equal(out, ref)


def test_integer_shears_move_rows_by_whole_pixels():
  """x += s (y - cy): on a 5-row image with s = 1 row r shifts right by r - 2 pixels (hand-worked)."""
  images = _images(n=2, h=5, w=7, c=1)
  out = np.asarray(warp.warp_images(images, geometric.shearing(jnp.array([1.0, -1.0]), jnp.zeros(2), (5, 7))))
  ref = np.zeros_like(out)
  for i, s in enumerate((1, -1)):
    for r in range(5):
      for c in range(7):
        src = c - s * (r - 2)
        if 0 <= src < 7:
          ref[i, r, c] = images[i, r, src]
  np.testing.assert_array_equal(out, ref)


def test_shear_and_translate_ops_with_zero_ranges_are_identities():
  images = _images(h=6, w=5)
  np.testing.assert_array_equal(augment.build("shear(x=0, y=0)|translate(x=0, y=0)")(KEY, images), images)


def test_fractional_shears_match_scipy_bilinear():
  images = _images(n=2, h=9, w=8, c=1, seed=3)
  sx, sy = np.array([0.3, -0.2]), np.array([0.1, 0.25])
  forward = np.asarray(geometric.shearing(jnp.asarray(sx, jnp.float32), jnp.asarray(sy, jnp.float32), (9, 8)))
  out = np.asarray(warp.warp_images(images, jnp.asarray(forward)))
  for i in range(2):
    # Reference in float64: invert the map with NumPy, sample pixel centres with scipy (zero outside).
    inverse = np.linalg.inv(np.vstack([forward[i].astype(np.float64), [0, 0, 1]]))
    ys, xs = np.mgrid[0:9, 0:8] + 0.5
    x_in = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    y_in = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    ref = ndimage.map_coordinates(np.asarray(images[i, :, :, 0], np.float64), [y_in - 0.5, x_in - 0.5], order=1,
                                  mode="grid-constant", cval=0.0)
    np.testing.assert_allclose(out[i, :, :, 0], ref, atol=1e-5)


def test_translate_shifts_by_whole_pixels_with_zero_fill():
  images = _images(n=6, h=8, w=8, c=1)
  out = np.asarray(augment.build("translate(x=0.25, y=0.25)")(KEY, images))
  padded = np.pad(np.asarray(images), ((0, 0), (2, 2), (2, 2), (0, 0)))
  for i in range(6):
    windows = [padded[i, 2 - dy:10 - dy, 2 - dx:10 - dx] for dy in range(-2, 3) for dx in range(-2, 3)]
    assert any(np.array_equal(out[i], window) for window in windows)


def test_full_window_resized_crop_and_unit_zoom_are_identities():
  images = _images(h=8, w=8)
  np.testing.assert_array_equal(
      augment.build("random_resized_crop(scale=(1.0, 1.0), ratio=(1.0, 1.0))")(KEY, images), images)
  np.testing.assert_array_equal(augment.build("zoom(scale=(1.0, 1.0))|affine")(KEY, images), images)


def test_resized_crop_output_size_and_zoom_by_two_against_numpy():
  images = _images(n=2, h=8, w=8, c=1)
  assert augment.build("random_resized_crop(size=(5, 6))")(KEY, images).shape == (2, 5, 6, 1)
  # Zooming by 2 about the centre (4, 4): the output pixel centre x samples the input at 4 + (x - 4) / 2, i.e.
  # pixel index 3.5 + (x - 4) / 2, a quarter pixel off a centre: bilinear weights 3/4 and 1/4, worked here.
  out = np.asarray(augment.build("zoom(scale=(2.0, 2.0))")(KEY, images))
  x = np.asarray(images[0, :, :, 0], np.float64)
  src = 3.5 + (np.arange(8) + 0.5 - 4) / 2
  lo = np.floor(src).astype(int)
  frac = src - lo
  rows = x[lo] * (1 - frac)[:, None] + x[lo + 1] * frac[:, None]
  ref = rows[:, lo] * (1 - frac)[None] + rows[:, lo + 1] * frac[None]
  np.testing.assert_allclose(out[0, :, :, 0], ref, atol=1e-6)


def _rectangles(n, size, seed):
  """Images [n, size, size, 1] each with one filled rectangle, and its box [n, 1, 4] (x1, y1, x2, y2)."""
  rng = np.random.default_rng(seed)
  images, boxes = np.zeros((n, size, size, 1), np.float32), np.zeros((n, 1, 4), np.float32)
  for i in range(n):
    y1, x1 = rng.integers(size // 4, size // 2, 2)
    y2, x2 = y1 + rng.integers(3, size // 3), x1 + rng.integers(3, size // 3)
    images[i, y1:y2, x1:x2] = 1.0
    boxes[i, 0] = (x1, y1, x2, y2)
  return jnp.asarray(images), jnp.asarray(boxes)


def _pixel_box(image):
  rows, cols = np.nonzero(image[:, :, 0] > 0.5)
  return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32)


# (pipeline, tolerance in pixels): exact copies of pixels keep boxes exact; resampling moves edges by < 1 pixel.
BOX_CASES = [("flip_lr|flip_ud|pad_crop(pad=3)", 0), ("pad(to=40)", 0), ("translate(x=0.2, y=0.2)", 0),
             ("rotate(degrees=40)", 1), ("shear(x=20, y=15)", 1), ("zoom(scale=(0.7, 1.4))", 1),
             ("random_resized_crop(scale=(0.5, 1.0), size=24)", 1),
             ("affine(degrees=30, shear=(10, 10), scale=(0.8, 1.2), translate=(0.1, 0.1))", 1)]


@pytest.mark.parametrize("spec,tolerance", BOX_CASES, ids=[c[0] for c in BOX_CASES])
def test_boxes_stay_on_the_same_pixels(spec, tolerance):
  images, boxes = _rectangles(8, 32, seed=1)
  out = jax.jit(augment.build(spec).apply)(jax.random.PRNGKey(5), images, boxes=boxes)
  for image, box in zip(np.asarray(out.images), np.asarray(out.boxes)[:, 0]):
    np.testing.assert_allclose(_pixel_box(image), box, atol=tolerance)


def test_quarter_turn_moves_boxes_exactly():
  images, boxes = _rectangles(4, 16, seed=2)
  forward = geometric.rotation(jnp.full((4,), np.pi / 2), (16, 16))
  out_images = np.asarray(warp.warp_images(images, forward))
  out_boxes = np.asarray(warp.transform_boxes(boxes, forward, (16, 16)))
  for image, box in zip(out_images, out_boxes[:, 0]):
    np.testing.assert_array_equal(_pixel_box(image), box)


def test_boxes_leaving_the_image_are_clipped_and_padding_boxes_stay_empty():
  boxes = jnp.array([[[0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 6.0, 5.0]]])
  forward = geometric.translation(jnp.array([5.0]), jnp.array([-3.0]))
  out = np.asarray(warp.transform_boxes(boxes, forward, (8, 8)))
  np.testing.assert_array_equal(out[0, 1], [7.0, 0.0, 8.0, 2.0])
  assert (out[0, 0, 2] - out[0, 0, 0]) * (out[0, 0, 3] - out[0, 0, 1]) == 0


def test_integer_images_are_warped_and_rounded_back():
  raw = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 6, 6, 1)), jnp.uint8)
  out = augment.rotate_images(raw, jnp.array([np.pi / 2, 0.3]))
  assert out.dtype == jnp.uint8
  np.testing.assert_array_equal(out[0], np.rot90(np.asarray(raw[0])))
