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
