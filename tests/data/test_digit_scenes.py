"""digit_scenes: every box, mask and pixel checked against an independent re-rendering of each scene with PIL
and NumPy (crop the source digit, resize it into its patch, threshold its ink, stack the digits with max);
train and test scenes use disjoint source digits; same seed, same arrays."""

import numpy as np
import pytest
from PIL import Image

from vision_jax.data import datasets, digit_scenes, embedded_mnist


@pytest.fixture(scope="module")
def digits():
  images, labels = embedded_mnist.load_arrays()
  return images[:300], labels[:300]


def _rendered_ink(digit, patch):
  """The placed digit: its pixels and ink [h, w] inside `patch` (x1, y1, x2, y2), re-made here."""
  ys, xs = np.nonzero(digit)
  crop = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
  x1, y1, x2, y2 = patch
  pixels = np.asarray(Image.fromarray(crop).resize((x2 - x1, y2 - y1), Image.BILINEAR))
  ink = pixels >= 128
  return pixels, ink if ink.any() else pixels == pixels.max()


def test_scenes_agree_with_an_independent_rendering(digits):
  images, labels = digits
  offset = 5000  # source_index reports the caller's indices
  scenes = digit_scenes.make_scenes(images, labels, 40, seed=3, source_indices=np.arange(300) + offset)
  masks = digit_scenes.instance_masks(scenes["instance_ids"], 6)
  occluded = total = checked_unoccluded = 0
  for n in range(40):
    count = int(scenes["num_objects"][n])
    assert 1 <= count <= 6
    canvas = np.zeros((96, 96), np.uint8)
    inks = np.zeros((count, 96, 96), bool)
    for k in range(count):
      source = scenes["source_index"][n, k] - offset
      x1, y1, x2, y2 = patch = scenes["patch_boxes"][n, k]
      assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96 and 16 <= max(x2 - x1, y2 - y1) <= 48
      pixels, ink = _rendered_ink(images[source], patch)
      canvas[y1:y2, x1:x2] = np.maximum(canvas[y1:y2, x1:x2], pixels)
      inks[k, y1:y2, x1:x2] = ink
      rows, cols = np.nonzero(inks[k])
      np.testing.assert_array_equal(scenes["boxes"][n, k], [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
      assert scenes["box_labels"][n, k] == labels[source]
    np.testing.assert_array_equal(scenes["image"][n, :, :, 0], canvas)
    semantic = np.zeros((96, 96), np.uint8)
    for k in range(count):
      visible = inks[k] & ~inks[k + 1:].any(0)  # later digits own their ink
      np.testing.assert_array_equal(masks[n, k], visible)
      semantic[visible] = labels[scenes["source_index"][n, k] - offset] + 1
      occluded += int(inks[k].sum() - visible.sum())
      total += int(inks[k].sum())
      if visible.sum() == inks[k].sum():  # unoccluded: the box is tight around its instance mask
        rows, cols = np.nonzero(masks[n, k])
        np.testing.assert_array_equal(scenes["boxes"][n, k], [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
        checked_unoccluded += 1
    np.testing.assert_array_equal(scenes["semantic_mask"][n], semantic)
    assert not masks[n, count:].any() and np.all(scenes["box_labels"][n, count:] == -1)
    assert np.all(scenes["boxes"][n, count:] == 0) and np.all(scenes["source_index"][n, count:] == -1)
  assert occluded > 0 and checked_unoccluded > 50
  stats = digit_scenes.statistics(scenes)
  assert stats["occluded_ink_fraction"] == pytest.approx(occluded / total)
  assert stats["objects_per_image"].sum() == 40 and stats["box_size_counts"].sum() == scenes["num_objects"].sum()


def test_same_seed_same_scenes_other_seed_other_scenes(digits):
  images, labels = digits
  config = digit_scenes.SceneConfig(canvas_size=64, max_size=32, max_digits=3, max_objects=4)
  first = digit_scenes.make_scenes(images, labels, 12, seed=7, config=config)
  again = digit_scenes.make_scenes(images, labels, 12, seed=7, config=config)
  assert first["image"].shape == (12, 64, 64, 1) and first["boxes"].shape == (12, 4, 4)
  assert first["num_objects"].max() <= 3
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  assert not np.array_equal(digit_scenes.make_scenes(images, labels, 12, seed=8, config=config)["image"],
                            first["image"])


def test_splits_use_disjoint_digits_and_load_with_typed_features():
  train_source, train_spec = datasets.load("digit_scenes", "train")
  test_source, spec = datasets.load("digit_scenes", "test")
  assert (train_spec.num_examples, spec.num_examples) == (8000, 2000)
  train_digits = train_source.arrays["source_index"]
  test_digits = test_source.arrays["source_index"]
  train_digits, test_digits = train_digits[train_digits >= 0], test_digits[test_digits >= 0]
  assert train_digits.max() < embedded_mnist.NUM_TRAIN <= test_digits.min()
  assert not set(train_digits.tolist()) & set(test_digits.tolist())
  assert spec.label_key == "" and spec.image_shape == (96, 96, 1)
  kinds = {k: (f.kind, f.shape, f.dtype) for k, f in spec.features.items()}
  assert kinds["instance_masks"] == ("instance_masks", (6, 96, 96), "uint8")
  assert kinds["semantic_mask"] == ("mask", (96, 96), "uint8")
  assert spec.features["semantic_mask"].class_names == ("background",) + tuple("0123456789")
  assert spec.features["box_labels"].class_names == tuple("0123456789")
  record, batch = test_source[5], test_source.take(np.array([3, 5]))
  for key, feature in spec.features.items():
    assert record[key].shape == feature.shape and record[key].dtype == feature.dtype, key
    np.testing.assert_array_equal(batch[key][1], record[key])
  owner = np.argmax(np.concatenate([np.zeros((1, 96, 96)), record["instance_masks"]]), 0)
  labels = np.concatenate([[-1], record["box_labels"]])
  np.testing.assert_array_equal(record["semantic_mask"], labels[owner] + 1)  # semantic mask from instances


def test_config_mistakes_are_refused():
  with pytest.raises(ValueError, match="max_digits <= max_objects"):
    digit_scenes.SceneConfig(max_digits=7)
  with pytest.raises(ValueError, match="max_size <= canvas_size"):
    digit_scenes.SceneConfig(canvas_size=32)
