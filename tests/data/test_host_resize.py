"""Host resizing of whole examples: letterbox and centre crop move boxes, masks and keypoints with the image."""

import numpy as np
import pytest

from vision_jax.data import host_resize, pipeline, sources, throughput
from vision_jax.data.features import IGNORE_INDEX, Feature, make_spec, object_features
from vision_jax.errors import ConfigError, DataError


def _features(height, width, max_objects=3, keypoints=2):
  features = {"image": Feature("image", (height, width, 1), "uint8"),
              "semantic_mask": Feature("mask", (height, width), "uint8", 3),
              "keypoints": Feature("keypoints", (keypoints, 3), "float32")}
  features.update(object_features(max_objects, 3, mask_shape=(height, width)))
  return features


def _example(height, width, rects, keypoints=()):
  """An example whose image, instance masks and semantic mask mark the rectangles (x1, y1, x2, y2)."""
  image = np.zeros((height, width, 1), np.uint8)
  semantic = np.zeros((height, width), np.uint8)
  masks = np.zeros((len(rects), height, width), np.uint8)
  for i, (x1, y1, x2, y2) in enumerate(rects):
    image[y1:y2, x1:x2] = 200
    semantic[y1:y2, x1:x2] = i + 1
    masks[i, y1:y2, x1:x2] = 1
  example = {"image": image, "semantic_mask": semantic, "instance_masks": masks,
             "boxes": np.asarray(rects, np.float32).reshape(-1, 4), "box_labels": np.arange(len(rects), dtype=np.int32),
             "keypoints": np.asarray(keypoints, np.float32).reshape(-1, 3)}
  return example


def _mask_box(mask):
  rows, cols = np.nonzero(mask)
  return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32)


def test_letterbox_hand_worked_wide_image():
  # 10 x 20 (h x w) into 40: scale 2, resized 20 x 40, centred with 10 rows of padding above and below.
  example = _example(10, 20, [(4, 2, 8, 6)], keypoints=[(4.5, 2.5, 1), (19.5, 9.5, 1)])
  out = host_resize.letterbox(example, 40, _features(10, 20), fill=7)
  np.testing.assert_array_equal(out["resize_info"], [2, 2, 10, 0])
  assert out["image"].shape == (40, 40, 1) and out["image"].dtype == np.uint8
  assert (out["image"][:10] == 7).all() and (out["image"][30:] == 7).all()
  np.testing.assert_array_equal(out["boxes"][0], [8, 14, 16, 22])
  np.testing.assert_array_equal(_mask_box(out["instance_masks"][0]), [8, 14, 16, 22])
  np.testing.assert_array_equal(_mask_box(out["semantic_mask"] == 1), [8, 14, 16, 22])
  assert (out["semantic_mask"][:10] == IGNORE_INDEX).all() and (out["instance_masks"][:, :10] == 0).all()
  np.testing.assert_array_equal(out["keypoints"], [[9, 15, 1], [39, 29, 1]])
  assert out["num_objects"] == 1 and out["box_labels"].tolist() == [0, -1, -1]
  np.testing.assert_array_equal(out["boxes"][1:], 0)
  # resize_info maps the output box back to the stored one.
  scale_y, scale_x, offset_y, offset_x = out["resize_info"]
  back = (out["boxes"][0] - [offset_x, offset_y, offset_x, offset_y]) / [scale_x, scale_y, scale_x, scale_y]
  np.testing.assert_allclose(back, [4, 2, 8, 6])


def test_center_crop_clips_and_removes_objects_by_visible_fraction():
  # 20 x 40 into 16 with crop_fraction 1: scale 0.8 -> 16 x 32, the central 16 columns start at 8.
  rects = [(0, 0, 10, 10), (10, 0, 20, 10), (5, 0, 15, 10)]
  example = _example(20, 40, rects, keypoints=[(2.5, 2.5, 1), (12.5, 2.5, 1)])
  features = {**_features(20, 40), "source_index": Feature("value", (3,), "int32")}
  example["source_index"] = np.array([10, 11, 12], np.int32)  # one value per object, re-packed with them
  out = host_resize.center_crop(example, 16, features, crop_fraction=1.0, min_visible=0.6)
  np.testing.assert_allclose(out["resize_info"], [0.8, 0.8, 0, -8])
  # Rect 0 leaves the crop entirely, rect 2 keeps half its area (< 0.6): only rect 1 stays, moved to the front.
  assert out["num_objects"] == 1 and out["box_labels"].tolist() == [1, -1, -1]
  assert out["source_index"].tolist() == [11, 0, 0]
  np.testing.assert_allclose(out["boxes"], [[0, 0, 8, 8], [0, 0, 0, 0], [0, 0, 0, 0]])
  np.testing.assert_array_equal(_mask_box(out["instance_masks"][0]), [0, 0, 8, 8])
  assert not out["instance_masks"][1:].any()
  np.testing.assert_allclose(out["keypoints"], [[-6, 2, 0], [2, 2, 1]])
  half = host_resize.center_crop(example, 16, features, crop_fraction=1.0, min_visible=0.5)
  assert half["num_objects"] == 2 and half["box_labels"].tolist() == [1, 2, -1]
  np.testing.assert_allclose(half["boxes"][1], [0, 0, 4, 8])
  np.testing.assert_array_equal(half["image"], host_resize.resize_and_center_crop(example["image"], 16, 1.0))


def test_ragged_records_are_repacked_to_static_rows():
  features = _features(8, 8, max_objects=4)
  example = _example(8, 8, [(1, 1, 3, 3), (4, 4, 7, 6)])
  del example["keypoints"], example["semantic_mask"]
  out = host_resize.fit_objects(example, features)
  assert out["boxes"].shape == (4, 4) and out["instance_masks"].shape == (4, 8, 8)
  assert out["box_labels"].tolist() == [0, 1, -1, -1] and out["num_objects"] == 2
  resized = host_resize.letterbox(example, 16, features)
  assert resized["boxes"].shape == (4, 4) and resized["num_objects"] == 2


def test_pipeline_letterboxes_varying_records_with_annotations():
  rng = np.random.default_rng(0)

  class Varying:
    def __init__(self):
      self.records = []
      for i in range(8):
        h, w = rng.integers(12, 30, 2)
        x1, y1 = rng.integers(0, w // 2), rng.integers(0, h // 2)
        self.records.append(_example(h, w, [(x1, y1, x1 + 4, y1 + 5)]))
        self.records[-1]["label"] = np.int32(i % 3)

    def __len__(self):
      return 8

    def __getitem__(self, i):
      return self.records[i]

  features = {**_features(0, 0, max_objects=1), "label": Feature("label", (), "int32", 3)}
  spec = make_spec("varying", "train", 8, features)
  batch = next(iter(pipeline.train_dataset(Varying(), spec, 8, 1, seed=0, image_size=24, resize="letterbox")))
  assert batch["image"].shape == (8, 24, 24, 1) and batch["instance_masks"].shape == (8, 1, 24, 24)
  assert batch["resize_info"].shape == (8, 4) and batch["semantic_mask"].shape == (8, 24, 24)
  for boxes, masks in zip(batch["boxes"], batch["instance_masks"]):
    np.testing.assert_allclose(_mask_box(masks[0]), boxes[0], atol=1)
  evaluated = next(iter(pipeline.eval_dataset(Varying(), spec, 8, image_size=24, resize="letterbox")))
  assert evaluated["boxes"].shape == (8, 1, 4) and evaluated["mask"].all()


def test_classification_batches_without_geometry_carry_no_resize_info():
  spec = make_spec("plain", "train", 4, {"image": Feature("image", (6, 9, 3), "uint8"),
                                         "label": Feature("label", (), "int32", 2)})
  source = sources.ArraySource({"image": np.zeros((4, 6, 9, 3), np.uint8), "label": np.zeros(4, np.int32)})
  batch = next(iter(pipeline.train_dataset(source, spec, 4, 1, seed=0, image_size=5)))
  assert sorted(batch) == ["image", "label"]
  boxed = next(iter(pipeline.train_dataset(source, spec, 4, 1, seed=0, image_size=5, resize="letterbox")))
  assert sorted(boxed) == ["image", "label", "resize_info"]


def test_resized_features_and_errors():
  resized = host_resize.resized_features(_features(0, 0), 32)
  assert resized["image"].shape == (32, 32, 1) and resized["semantic_mask"].shape == (32, 32)
  assert resized["instance_masks"].shape == (3, 32, 32) and resized["resize_info"].shape == (4,)
  example = _example(8, 8, [(1, 1, 3, 3)])
  with pytest.raises(ConfigError, match="resize mode 'stretch'"):
    host_resize.resize_example(example, 8, _features(8, 8), mode="stretch")
  with pytest.raises(DataError, match=r"\[H, W\] or \[H, W, C\]"):
    host_resize.resize_example({"image": np.zeros((2, 2, 2, 2), np.uint8)}, 8, {})


def test_throughput_reports_both_stages():
  source, spec = throughput.scenes_like_source(32, size=24, max_objects=3)
  figures = throughput.pipeline_throughput(source, spec, batch_size=8, steps=2, image_size=32)
  assert figures["host_examples_per_s"] > 0 and figures["device_examples_per_s"] > 0
