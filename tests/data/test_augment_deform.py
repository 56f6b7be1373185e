"""The view augmentations (`data.augment.deform`): displacement sampling against scipy.ndimage.map_coordinates
(mode grid-constant: zeros beyond the border, interpolated into it),
field smoothing against scipy.ndimage.convolve1d, grey dilation / erosion against scipy.ndimage, the registered ops'
probabilities and dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from vision_jax.data import augment
from vision_jax.errors import ConfigError
from vision_jax.data.augment import deform as V


def test_displace_matches_scipy_bilinear_sampling():
  rng = np.random.default_rng(0)
  images = rng.uniform(0, 255, (2, 9, 7, 2)).astype(np.float32)
  fields = rng.uniform(-2.5, 2.5, (2, 2, 9, 7)).astype(np.float32)
  ours = np.asarray(V.displace(jnp.asarray(images), jnp.asarray(fields)))
  rows, cols = np.meshgrid(np.arange(9.0), np.arange(7.0), indexing="ij")
  for i in range(2):
    for c in range(2):
      coords = [rows + fields[i, 0], cols + fields[i, 1]]
      expected = ndimage.map_coordinates(images[i, :, :, c].astype(np.float64), coords, order=1,
                                         mode="grid-constant", cval=0.0)
      np.testing.assert_allclose(ours[i, :, :, c], expected, atol=1e-3)


def test_smooth_fields_is_a_zero_padded_separable_gaussian():
  noise = np.random.default_rng(1).uniform(-1, 1, (2, 12, 10)).astype(np.float32)
  taps = V.gaussian_kernel(2.0).astype(np.float64)
  assert abs(taps.sum() - 1) < 1e-6 and len(taps) == 9
  expected = ndimage.convolve1d(ndimage.convolve1d(noise.astype(np.float64), taps, axis=1, mode="constant"), taps,
                                axis=2, mode="constant")
  np.testing.assert_allclose(np.asarray(V.smooth_fields(jnp.asarray(noise), 2.0)), expected, atol=1e-5)


@pytest.mark.parametrize("dilate", [True, False])
def test_grey_morphology_matches_scipy_with_a_cross(dilate):
  images = np.random.default_rng(2).integers(0, 256, (2, 6, 5, 1)).astype(np.uint8)
  cross = ndimage.generate_binary_structure(2, 1)
  scipy_op = ndimage.grey_dilation if dilate else ndimage.grey_erosion
  expected = np.stack([scipy_op(im[..., 0], footprint=cross, mode="nearest")[..., None] for im in images])
  ours = V.grey_morphology(jnp.asarray(images), dilate)
  assert ours.dtype == jnp.uint8
  np.testing.assert_array_equal(np.asarray(ours), expected)


def test_registered_ops_keep_dtype_and_follow_p():
  images = jnp.asarray(np.random.default_rng(3).integers(0, 256, (6, 8, 8, 1)), jnp.uint8)
  key = jax.random.key(0)
  for spec in ("elastic(alpha=4, sigma=2, p=0)", "stroke(p=0)"):
    np.testing.assert_array_equal(np.asarray(augment.build(spec)(key, images)), np.asarray(images))
  thick_or_thin = np.asarray(augment.build("stroke(p=1)")(key, images))
  dilated, eroded = (np.asarray(V.grey_morphology(images, d)) for d in (True, False))
  assert all((thick_or_thin[i] == dilated[i]).all() or (thick_or_thin[i] == eroded[i]).all() for i in range(6))
  warped = augment.build("elastic(alpha=4, sigma=2, p=1)")(key, images)
  assert warped.dtype == jnp.uint8 and not (np.asarray(warped) == np.asarray(images)).all()
  with pytest.raises(ConfigError, match="probability"):
    augment.build("stroke(p=2)")


def _moment_reference(image: np.ndarray, spread: float = 0.0, max_stretch: float = 2.0) -> np.ndarray:
  """float64 moments (pixel centres at index + 0.5) and scipy's bilinear affine resampling, zeros outside."""
  h, w = image.shape
  ys, xs = np.mgrid[:h, :w] + 0.5
  total = image.sum()
  mx, my = (image * xs).sum() / total, (image * ys).sum() / total
  var_x, var_y = (image * (xs - mx) ** 2).sum() / total, (image * (ys - my) ** 2).sum() / total
  alpha = (image * (xs - mx) * (ys - my)).sum() / total / var_y
  fx = fy = 1.0
  if spread:
    fy = spread * h / np.sqrt(var_y)
    fx = min(spread * w / np.sqrt(max(var_x - alpha ** 2 * var_y, 1e-12)), max_stretch * fy)
  # output pixel centre (x', y') reads input y = my + (y' - h/2) / fy, x = mx + alpha (y - my) + (x' - w/2) / fx
  matrix = np.array([[1 / fy, 0.0], [alpha / fy, 1 / fx]])
  centre_out = np.array([h / 2 - 0.5, w / 2 - 0.5])  # index of the centre in (row, col)
  offset = np.array([my - 0.5, mx - 0.5]) - matrix @ centre_out
  return ndimage.affine_transform(image, matrix, offset=offset, order=1, mode="grid-constant", cval=0.0)


def _slanted_strokes() -> np.ndarray:
  images = np.zeros((3, 20, 16, 1), np.float32)
  for i, slope in enumerate((0.4, -0.3, 0.0)):  # two slanted strokes of width ~3 px, off centre; a thin bar
    for r in range(3, 17):
      c = int(np.floor(6 + slope * (r - 10)))
      images[i, r, c:c + (2 if i < 2 else 1), 0] = 200.0
      images[i, r, c + 2, 0] = 80.0 if i < 2 else 0.0
  return images


@pytest.mark.parametrize("pipeline,spread", [("deskew", 0.0), ("moment_norm(spread=0.2, max_stretch=2)", 0.2)])
def test_moment_ops_match_a_float64_moment_and_scipy_reference_and_remove_the_slant(pipeline, spread):
  images = _slanted_strokes()
  ours = np.asarray(augment.build(pipeline)(jax.random.PRNGKey(0), jnp.asarray(images)))
  ys, xs = np.mgrid[:20, :16] + 0.5
  for i in range(3):
    np.testing.assert_allclose(ours[i, :, :, 0], _moment_reference(images[i, :, :, 0].astype(np.float64), spread),
                               atol=1e-3)
    ink = ours[i, :, :, 0].astype(np.float64)
    mx, my = (ink * xs).sum() / ink.sum(), (ink * ys).sum() / ink.sum()
    assert abs(mx - 8) < 0.05 and abs(my - 10) < 0.05  # centroid at the centre
    assert abs((ink * (xs - mx) * (ys - my)).sum() / (ink * (ys - my) ** 2).sum()) < 0.02  # no slant left
    if spread and i < 2:  # both axes at the target spread (less the interpolation's blur)
      assert abs(np.sqrt((ink * (ys - my) ** 2).sum() / ink.sum()) - spread * 20) < 0.3
  if spread:  # the thin bar is widened only up to max_stretch times its vertical scale
    bar_fy = spread * 20 / np.sqrt(((images[2, :, :, 0] > 0) * (ys - 10) ** 2).sum() / (images[2, :, :, 0] > 0).sum())
    assert np.count_nonzero(ours[2, 10, :, 0] > 1) <= int(np.ceil(2 * bar_fy)) + 2


def test_deskew_leaves_upright_centred_and_blank_images_alone():
  upright = np.zeros((1, 12, 12, 1), np.uint8)
  upright[0, 2:10, 5:7, 0] = 255  # a vertical bar centred on the image
  blank = np.zeros((1, 12, 12, 1), np.uint8)
  op = augment.build("deskew")
  np.testing.assert_array_equal(np.asarray(op(jax.random.PRNGKey(0), jnp.asarray(upright))), upright)
  np.testing.assert_array_equal(np.asarray(op(jax.random.PRNGKey(0), jnp.asarray(blank))), blank)
  np.testing.assert_allclose(np.asarray(V.moment_maps(jnp.asarray(upright), center=False))[0],
                             [[1, 0, 0], [0, 1, 0]], atol=1e-6)


@pytest.mark.parametrize("pipeline", ["moment_norm(spread=0)", "moment_norm(max_stretch=0.5)"])
def test_moment_norm_rejects_a_spread_or_stretch_it_cannot_use(pipeline):
  with pytest.raises(ConfigError, match="needs spread > 0 and max_stretch >= 1"):
    augment.build(pipeline)
