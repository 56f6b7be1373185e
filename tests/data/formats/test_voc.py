"""Pascal VOC folders: 1-based boxes, difficult flags, class names, masks and errors."""

import os

import numpy as np
import pytest

from tests.data.formats import writers
from tests.data.formats.expect import one_line_error
from vision_jax.data import formats

SCENE = ("x.png", 16, 8, [((0, 0, 16, 8), 14), ((3, 2, 5, 7), 8), ((10, 1, 12, 3), 8)])



def test_one_based_boxes_difficult_and_voc_classes(tmp_path):
  writers.write_voc(str(tmp_path), (SCENE,), difficult={(0, 1)})
  xml = (tmp_path / "Annotations" / "x.xml").read_text()
  assert "<xmin>4</xmin><ymin>3</ymin><xmax>5</xmax><ymax>7</ymax>" in xml  # the 1-based form of (3, 2, 5, 7)
  source, spec = formats.load("voc", str(tmp_path), "train", max_objects=4)
  assert spec.features["box_labels"].class_names == writers.VOC_NAMES and spec.image_shape == (8, 16, 3)
  example = source[0]
  np.testing.assert_array_equal(example["boxes"], [[0, 0, 16, 8], [3, 2, 5, 7], [10, 1, 12, 3], [0, 0, 0, 0]])
  np.testing.assert_array_equal(example["box_labels"], [14, 8, 8, -1])
  np.testing.assert_array_equal(example["difficult"], [0, 1, 0, 0])
  assert example["difficult"].dtype == np.uint8 and spec.features["difficult"].shape == (4,)


def test_difficult_follows_the_kept_objects(tmp_path):
  writers.write_voc(str(tmp_path), (SCENE,), difficult={(0, 2)})
  example = formats.load("voc", str(tmp_path), "train", max_objects=2)[0][0]
  np.testing.assert_array_equal(example["boxes"], [[0, 0, 16, 8], [3, 2, 5, 7]])  # areas 128, 10, 4
  np.testing.assert_array_equal(example["difficult"], [0, 0])


def test_custom_names_are_found_or_listed(tmp_path):
  xml = writers.voc_xml("x.png", 16, 8, [((1, 1, 4, 4), "zebra", False), ((2, 2, 6, 6), "ant", False)])
  writers.write_text(str(tmp_path / "Annotations" / "x.xml"), xml)
  writers.write_text(str(tmp_path / "Annotations" / "y.xml"), writers.voc_xml("y.png", 16, 8, [((1, 1, 2, 2), "cow",
                                                                                                  False)]))
  for name in ("x", "y"):
    writers.write_image(str(tmp_path / "JPEGImages" / f"{name}.png"), writers.random_image(16, 8))
  writers.write_text(str(tmp_path / "ImageSets" / "Main" / "train.txt"), "x\n")
  source, spec = formats.load("voc", str(tmp_path), "train")
  assert spec.features["box_labels"].class_names == ("ant", "cow", "zebra")  # every name in Annotations/
  np.testing.assert_array_equal(source[0]["box_labels"][:2], [2, 0])
  writers.write_text(str(tmp_path / "classes.txt"), "zebra\nant\n")
  source, spec = formats.load("voc", str(tmp_path), "train")
  assert spec.features["box_labels"].class_names == ("zebra", "ant")
  np.testing.assert_array_equal(source[0]["box_labels"][:2], [0, 1])
  with one_line_error("y.xml has object class 'cow', which is not in classes.txt"):
    formats.load("voc", str(tmp_path), "all")


def test_segmentation_pngs_give_semantic_and_instance_masks(tmp_path):
  writers.write_voc(str(tmp_path), (SCENE,))
  rng = np.random.default_rng(0)
  classes = rng.integers(0, 21, (8, 16)).astype(np.uint8)
  classes[0, :4] = 255
  instances = rng.integers(0, 4, (8, 16)).astype(np.uint8)  # objects 1..3 and background 0
  instances[1, :5] = 255
  palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
  writers.write_image(str(tmp_path / "SegmentationClass" / "x.png"), writers.palette_image(classes, palette))
  writers.write_image(str(tmp_path / "SegmentationObject" / "x.png"), writers.palette_image(instances, palette))
  source, spec = formats.load("voc", str(tmp_path), "train", max_objects=4)
  assert spec.features["semantic_mask"].num_classes == 21
  assert spec.features["semantic_mask"].class_names[:2] == ("background", "aeroplane")
  assert spec.features["instance_masks"].shape == (4, 8, 16)
  example = source[0]
  np.testing.assert_array_equal(example["semantic_mask"], classes)
  for i in range(3):
    np.testing.assert_array_equal(example["instance_masks"][i], instances == i + 1)
  assert not example["instance_masks"][3].any()


def test_mask_of_another_size_raises_one_line(tmp_path):
  writers.write_voc(str(tmp_path), (SCENE,))
  writers.write_image(str(tmp_path / "SegmentationClass" / "x.png"), np.zeros((8, 15), np.uint8))
  source, _ = formats.load("voc", str(tmp_path), "train")
  with one_line_error("mask .*x.png is 15x8 but its image .* is 16x8"):
    source[0]


@pytest.mark.parametrize("xml, message", [
    ("<annotation><object>", "not valid XML"),
    ("<annotation><object><name>cat</name><bndbox><xmin>1</xmin></bndbox></object></annotation>",
     "object 0 has no valid <bndbox/ymin> number"),
    ("<annotation><object><bndbox/></object></annotation>", "object 0 has no <name>"),
    (writers.voc_xml("x.png", 16, 8, [((5, 1, 3, 4), "cat", False)]), "negative width or height"),
    (writers.voc_xml("x.png", 16, 8, [((5, 1, 18, 4), "cat", False)]), "outside the 16x8 image"),
])
def test_malformed_annotations_raise_one_line(tmp_path, xml, message):
  writers.write_voc(str(tmp_path), (SCENE,))
  writers.write_text(str(tmp_path / "Annotations" / "x.xml"), xml)
  with one_line_error(message) as raised:
    formats.load("voc", str(tmp_path), "train")
  assert "x.xml" in str(raised.value)


def test_missing_split_folder_and_images(tmp_path):
  writers.write_voc(str(tmp_path), (SCENE,))
  with one_line_error(r"no split file ImageSets/Main/val.txt \(splits: train, all\)"):
    formats.load("voc", str(tmp_path), "val")
  with one_line_error("elsewhere/Annotations does not exist"):
    formats.load("voc", str(tmp_path / "elsewhere"), "train")
  os.remove(tmp_path / "JPEGImages" / "x.png")
  with one_line_error("x.jpg of .*x.xml does not exist"):
    formats.load("voc", str(tmp_path), "train", strict=True)
  with one_line_error("has no images"):  # the one image skipped
    formats.load("voc", str(tmp_path), "train")
  writers.write_text(str(tmp_path / "ImageSets" / "Main" / "train.txt"), "x\nmissing_id\n")
  with one_line_error("missing_id.xml does not exist"):
    formats.load("voc", str(tmp_path), "train")
