"""digit_localization: the keypoints are the card's corners (every card pixel lies inside their quadrilateral,
every pixel outside it is background), the box is tight around the dark ink printed on the card, labels match
the vendored digits, train and test use disjoint digits, same seed gives the same arrays."""

import numpy as np
import pytest

from vision_jax.data import datasets, digit_localization, embedded_mnist


def _edge_distances(corners, points):
  """Signed distances [P, 4] of points [P, 2] to the 4 edges of a convex quadrilateral (positive inside)."""
  start, end = corners, np.roll(corners, -1, 0)
  edge = end - start
  rel = points[:, None, :] - start[None]
  cross = edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]
  area = np.sum(edge[:, 0] * (start[:, 1] + end[:, 1])) / -2  # shoelace: > 0 when the cross products are too
  return np.sign(area) * cross / np.linalg.norm(edge, axis=1)


@pytest.fixture(scope="module")
def examples():
  images, labels = embedded_mnist.load_arrays()
  return digit_localization.make_examples(images[:60], labels[:60], seed=4, source_indices=np.arange(60) + 100,
                                          noise_std=0.0), labels


def test_keypoints_are_the_card_corners(examples):
  arrays, _ = examples
  centres = np.stack(np.meshgrid(np.arange(64) + 0.5, np.arange(64) + 0.5), -1).reshape(-1, 2)
  for image, keypoints in zip(arrays["image"][..., 0], arrays["keypoints"]):
    corners = keypoints[:, :2].astype(np.float64)
    distance = _edge_distances(corners, centres)
    inside, outside = distance.min(1) > 1e-3, distance.min(1) < -1e-3
    pixels = image.reshape(-1).astype(np.int64)
    assert not np.any((pixels > 60) & outside)  # card pixels lie inside
    background = np.unique(pixels[outside])
    assert len(background) <= 1 and np.all(background <= 50)  # outside the card: the background level only
    assert inside.sum() > 200
    visible = np.all((corners >= 0) & (corners <= 64), 1)
    np.testing.assert_array_equal(keypoints[:, 2], visible)
    # top_left / top_right are left / right of each other, as flip_pairs assume
    assert corners[0, 0] < corners[1, 0] and corners[3, 0] < corners[2, 0]
    assert corners[0, 1] < corners[3, 1] and corners[1, 1] < corners[2, 1]


def test_box_is_tight_around_the_printed_ink_and_labels_match(examples):
  arrays, labels = examples
  assert np.all(arrays["num_objects"] == 1)
  np.testing.assert_array_equal(arrays["label"], labels[arrays["source_index"] - 100])
  np.testing.assert_array_equal(arrays["box_labels"][:, 0], arrays["label"])
  assert sorted(arrays["source_index"]) == list(range(100, 160))
  centres = np.stack(np.meshgrid(np.arange(64) + 0.5, np.arange(64) + 0.5), -1).reshape(-1, 2)
  for image, box, keypoints in zip(arrays["image"][..., 0], arrays["boxes"][:, 0], arrays["keypoints"]):
    inside = (_edge_distances(keypoints[:, :2].astype(np.float64), centres).min(1) > 1e-3).reshape(64, 64)
    card_level = image[inside].max()
    dark = inside & (image < 0.5 * card_level)
    rows, cols = np.nonzero(dark)
    np.testing.assert_allclose(box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], atol=1)
    assert 0 <= box[0] < box[2] <= 64 and 0 <= box[1] < box[3] <= 64
    assert 14 <= box[3] - box[1] <= 50  # 18..34 px tall before rotation and shear


def test_determinism_splits_and_features():
  images, labels = embedded_mnist.load_arrays()
  first = digit_localization.make_examples(images[:20], labels[:20], seed=2)
  again = digit_localization.make_examples(images[:20], labels[:20], seed=2)
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  assert not np.array_equal(digit_localization.make_examples(images[:20], labels[:20], seed=3)["image"],
                            first["image"])
  assert np.any(first["image"] != digit_localization.make_examples(images[:20], labels[:20], seed=2,
                                                                   noise_std=0)["image"])
  train, _ = datasets.load("digit_localization", "train")
  test, spec = datasets.load("digit_localization", "test")
  assert sorted(train.arrays["source_index"]) == list(range(embedded_mnist.NUM_TRAIN))
  assert sorted(test.arrays["source_index"]) == list(range(embedded_mnist.NUM_TRAIN, 10000))
  keypoints = spec.features["keypoints"]
  assert keypoints.kind == "keypoints" and keypoints.shape == (4, 3)
  assert keypoints.keypoint_names == ("top_left", "top_right", "bottom_right", "bottom_left")
  assert keypoints.flip_pairs == ((0, 1), (2, 3))
  assert spec.label_key == "label" and spec.num_classes == 10 and spec.image_shape == (64, 64, 1)
  assert 0.02 < np.mean(test.arrays["keypoints"][..., 2] == 0) < 0.5  # some corners leave the canvas
