"""The same boxes written as COCO JSON, VOC XML and YOLO txt load to identical typed arrays."""

import numpy as np

from tests.data.formats import writers
from vision_jax.data import formats

MAX_OBJECTS = 4


def _load_all(tmp_path):
  writers.write_coco(str(tmp_path / "coco" / "ann.json"), str(tmp_path / "coco" / "images"))
  writers.write_voc(str(tmp_path / "voc"))
  writers.write_yolo(str(tmp_path / "yolo"))
  return {
      "coco": formats.load("coco", f"{tmp_path}/coco/ann.json@{tmp_path}/coco/images", "train",
                           max_objects=MAX_OBJECTS),
      "voc": formats.load("voc", str(tmp_path / "voc"), "train", max_objects=MAX_OBJECTS),
      "yolo": formats.load("yolo", str(tmp_path / "yolo"), "all", max_objects=MAX_OBJECTS),
  }


def test_coco_voc_yolo_load_identical_boxes_and_labels(tmp_path):
  loaded = _load_all(tmp_path)
  for kind, (source, spec) in loaded.items():
    assert len(source) == len(writers.SCENES), kind
    assert spec.features["box_labels"].class_names == writers.VOC_NAMES, kind
    assert spec.features["boxes"].shape == (MAX_OBJECTS, 4), kind
    for n, scene in enumerate(writers.SCENES):
      example = source[n]
      want_boxes, want_labels = writers.expected_objects(scene, MAX_OBJECTS)
      assert example["boxes"].dtype == np.float32 and example["box_labels"].dtype == np.int32, kind
      np.testing.assert_array_equal(example["boxes"], want_boxes, err_msg=kind)  # exact, YOLO included
      np.testing.assert_array_equal(example["box_labels"], want_labels, err_msg=kind)
      assert int(example["num_objects"]) == len(scene[3]), kind
      assert example["image"].shape == (scene[2], scene[1], 3), kind
      np.testing.assert_array_equal(example["image"], writers.random_image(scene[1], scene[2], n), err_msg=kind)


def test_specs_agree_on_varying_image_sizes(tmp_path):
  for kind, (_, spec) in _load_all(tmp_path).items():
    assert spec.image_shape == (0, 0, 3), kind  # the three images differ in size
    assert spec.num_examples == 3 and spec.label_key == "", kind
