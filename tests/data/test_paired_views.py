"""Paired views: the edge map is the morphological gradient thresholded (against scipy.ndimage grey dilation
and erosion), the low-resolution view the 2x2 block mean (against PIL's box filter and a hand-worked block);
`image2` is the digit, typed as an image."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from vision_jax.data import datasets, embedded_mnist, paired_views


def test_edge_map_is_the_thresholded_morphological_gradient():
  images, _ = embedded_mnist.load_arrays()
  digits = images[:50]
  edges = paired_views.edge_maps(digits)
  for digit, edge in zip(digits, edges):
    gradient = (ndimage.grey_dilation(digit, size=(3, 3), mode="constant", cval=0).astype(int) -
                ndimage.grey_erosion(digit, size=(3, 3), mode="constant", cval=0))
    np.testing.assert_array_equal(edge, np.where(gradient >= paired_views.EDGE_THRESHOLD, 255, 0))
  assert 0.05 < np.mean(edges == 255) < 0.5


def test_half_resolution_is_the_block_mean():
  block = np.array([[[1, 2], [3, 4]]], np.uint8)  # mean 2.5, rounded half up
  assert paired_views.half_resolution(block).tolist() == [[[3]]]
  images, _ = embedded_mnist.load_arrays()
  small = paired_views.half_resolution(images[:50])
  for digit, low in zip(images[:50], small):
    reference = np.asarray(Image.fromarray(digit).resize((14, 14), Image.BOX)).astype(int)
    assert np.abs(low.astype(int) - reference).max() <= 1


@pytest.mark.parametrize("name,shape", [("digit_edges2digit", (28, 28, 1)), ("digit_lowres2highres", (14, 14, 1))])
def test_paired_views_load_by_name(name, shape):
  source, spec = datasets.load(name, "test")
  images, labels = embedded_mnist.load_arrays()
  assert len(source) == embedded_mnist.NUM_TEST and spec.image_shape == shape
  assert spec.features["image2"].kind == "image" and spec.features["image2"].shape == (28, 28, 1)
  assert spec.extra_features == {"image2": (28, 28, 1)}
  record = source[11]
  np.testing.assert_array_equal(record["image2"][..., 0], images[embedded_mnist.NUM_TRAIN + 11])
  assert record["label"] == labels[embedded_mnist.NUM_TRAIN + 11]
  np.testing.assert_array_equal(record["image"][..., 0],
                                paired_views.VIEWS[name](images[embedded_mnist.NUM_TRAIN + 11][None])[0])
