"""COCO instances files: boxes, contiguous labels, crowd objects, masks against pycocotools, and errors."""

import contextlib
import io
import os

import numpy as np
import pytest
from pycocotools import coco
from pycocotools import mask as coco_mask

from tests.data.formats import writers
from tests.data.formats.expect import one_line_error
from vision_jax.data import formats

SCENES = (("a.png", 20, 10, []), ("b.png", 12, 16, []))


def _dataset(tmp_path, annotations, categories=((5, "cat"), (2, "dog")), scenes=SCENES):
  """Writes images and a JSON with the given annotations; returns the 'JSON@DIR' path."""
  data = writers.write_coco(str(tmp_path / "ann.json"), str(tmp_path / "img"), scenes)
  data["annotations"] = [dict({"id": i + 1, "iscrowd": 0}, **a) for i, a in enumerate(annotations)]
  data["categories"] = [{"id": i, "name": n} for i, n in categories]
  writers.save_json(str(tmp_path / "ann.json"), data)
  return f"{tmp_path}/ann.json@{tmp_path}/img"



def test_boxes_labels_crowd_and_empty_images(tmp_path):
  path = _dataset(tmp_path, [
      {"image_id": 100, "category_id": 5, "bbox": [1.5, 2, 4, 3]},
      {"image_id": 100, "category_id": 2, "bbox": [0, 0, 20, 10]},
      {"image_id": 100, "category_id": 2, "bbox": [3, 3, 2, 2], "iscrowd": 1},
  ])
  source, spec = formats.load("coco", path, "train", max_objects=3, masks=False)
  assert spec.features["box_labels"].class_names == ("dog", "cat") and source.category_ids == (2, 5)
  assert "instance_masks" not in spec.features and spec.features["num_crowd"].shape == ()
  first, second = source[0], source[1]
  np.testing.assert_array_equal(first["boxes"], [[1.5, 2, 5.5, 5], [0, 0, 20, 10], [0, 0, 0, 0]])
  np.testing.assert_array_equal(first["box_labels"], [1, 0, -1])
  assert first["num_objects"] == 2 and first["num_crowd"] == 1
  assert second["num_objects"] == 0 and second["num_crowd"] == 0 and second["image"].shape == (16, 12, 3)
  np.testing.assert_array_equal(second["box_labels"], [-1, -1, -1])


def test_instance_masks_match_pycocotools(tmp_path):
  rng = np.random.default_rng(0)
  crowd_like = (rng.random((10, 20)) < 0.5).astype(np.uint8)
  compressed = coco_mask.encode(np.asfortranarray(crowd_like))
  segmentations = [
      [[1, 1, 15, 2, 8, 9], [16, 5, 19, 5, 19, 9]],  # two polygons of one object
      {"size": [10, 20], "counts": compressed["counts"].decode("ascii")},
      {"size": [10, 20], "counts": [3, 7, 40, 150]},
  ]
  path = _dataset(tmp_path, [{"image_id": 100, "category_id": 5, "bbox": [0, 0, 20, 10], "segmentation": s}
                             for s in segmentations])
  source, spec = formats.load("coco", path, "train", max_objects=4)
  assert spec.features["instance_masks"].shape == (4, 0, 0)  # image sizes vary
  masks = source[0]["instance_masks"]
  assert masks.shape == (4, 10, 20) and masks.dtype == np.uint8
  with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress
    reference = coco.COCO(str(tmp_path / "ann.json"))
  for i, annotation in enumerate(reference.loadAnns(reference.getAnnIds(imgIds=[100]))):
    np.testing.assert_array_equal(masks[i], reference.annToMask(annotation))
  assert masks[0].sum() > 0 and not masks[3].any()


def test_too_many_objects_keep_the_largest_and_note_once(tmp_path):
  path = _dataset(tmp_path, [{"image_id": 100, "category_id": 2, "bbox": [0, 0, w, 1]} for w in (3, 9, 1, 5)])
  source, _ = formats.load("coco", path, "train", max_objects=2, masks=False)
  np.testing.assert_array_equal(source[0]["boxes"][:, 2], [9, 5])  # the two widest, in file order
  assert source.notes() == [f"note: coco:{tmp_path}/ann.json: 1 examples had more than 2 objects; kept the "
                            "largest 2 and dropped 2 (raise input.max_objects to keep them)"]
  source[0]
  assert source.notes() == []


def test_boxes_out_by_under_a_pixel_are_clipped(tmp_path):
  path = _dataset(tmp_path, [{"image_id": 100, "category_id": 2, "bbox": [-0.5, 1, 20.9, 9.5]}])
  source, _ = formats.load("coco", path, "train", max_objects=1, masks=False)
  np.testing.assert_allclose(source[0]["boxes"], [[0, 1, 20, 10]])


def test_directory_layout_and_json_beside_images(tmp_path):
  writers.write_coco(str(tmp_path / "annotations" / "instances_val.json"), str(tmp_path / "val"), SCENES)
  source, spec = formats.load("coco", str(tmp_path), "val")
  assert len(source) == 2 and spec.split == "val"
  writers.write_coco(str(tmp_path / "flat" / "_annotations.coco.json"), str(tmp_path / "flat"), SCENES)
  assert len(formats.load("coco", str(tmp_path / "flat" / "_annotations.coco.json"), "train")[0]) == 2


def test_missing_images_are_skipped_with_a_note_or_an_error_when_strict(tmp_path):
  path = _dataset(tmp_path, [])
  os.remove(tmp_path / "img" / "a.png")
  source, _ = formats.load("coco", path, "train")
  assert len(source) == 1 and source[0]["image"].shape == (16, 12, 3)
  assert source.notes() == [f"note: coco:{tmp_path}/ann.json: skipped 1 unreadable file: a.png (strict mode makes "
                            "this an error)"]
  with one_line_error("a.png .* does not exist"):
    formats.load("coco", path, "train", strict=True)


BOX = {"image_id": 100, "category_id": 2}


@pytest.mark.parametrize("annotation, message", [
    (dict(BOX, category_id=9), "unknown category id 9"),
    (dict(BOX, image_id=7), "refers to image id 7"),
    (dict(BOX, bbox=[1, 1, -2, 3]), "negative width or height"),
    (dict(BOX, bbox=[5, 5, 16, 3]), "outside the 20x10 image"),  # x2 = 21 sticks out by a pixel
    (dict(BOX, bbox=[5, 5, 3]), "no 'bbox' of 4 numbers"),
    (dict(BOX, bbox=[5, "5", 3, 3]), "no 'bbox' of 4 numbers"),
    ({"image_id": 100, "bbox": [1, 1, 2, 2]}, "no valid 'category_id'"),
])
def test_bad_annotations_raise_one_line(tmp_path, annotation, message):
  path = _dataset(tmp_path, [dict({"bbox": [1, 1, 2, 2]}, **annotation)])
  with one_line_error(message) as raised:
    formats.load("coco", path, "train")
  assert "ann.json annotation 0" in str(raised.value)


def test_malformed_json_and_missing_files_raise_one_line(tmp_path):
  path = _dataset(tmp_path, [])
  for setup, load_path, message in [
      (lambda: (tmp_path / "ann.json").write_text('{"images": [}'), path, "not valid JSON"),
      (lambda: (tmp_path / "ann.json").write_text('{"images": 3}'), path, "lacks the 'images' and 'categories'"),
      (lambda: None, f"{tmp_path}/nothing.json@{tmp_path}/img", "does not exist"),
      (lambda: None, str(tmp_path / "no_dir"), "instances_train.json does not exist"),
  ]:
    setup()
    with one_line_error(message):
      formats.load("coco", load_path, "train")
  _dataset(tmp_path, [])
  with one_line_error("COCO image directory .*elsewhere does not exist"):
    formats.load("coco", f"{tmp_path}/ann.json@{tmp_path}/elsewhere", "train")


def test_wrong_image_size_and_mask_size_raise_one_line_when_read(tmp_path):
  path = _dataset(tmp_path, [{"image_id": 101, "category_id": 2, "bbox": [0, 0, 2, 2],
                              "segmentation": {"size": [10, 20], "counts": [200]}}])
  source, _ = formats.load("coco", path, "train")
  with one_line_error("RLE mask is 10x20 .* image is 16x12"):
    source[1]
  writers.write_image(str(tmp_path / "img" / "a.png"), writers.random_image(8, 8))
  with one_line_error("a.png is 8x8 but .* says 20x10"):
    source[0]
