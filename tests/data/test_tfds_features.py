"""TFDS datasets beyond classification, mapped to our typed features, checked against hand-worked numbers.

No real data: each dataset is a small fake prepared to array_record in a temporary data dir by a builder
that subclasses the real TFDS builder class (so the FeaturesDict is the real one) and only replaces its
examples; COCO's builder code needs TensorFlow, so its fake repeats COCO's feature structure and is read back
from the prepared files. (`tfds.testing.mock_data` does serve `as_data_source`, but with random, mutually
inconsistent sequence lengths and unordered boxes, and an unprepared builder, so it cannot check numbers.)
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.data.fake_tfds import encoded, fake_builder, rgb
from vision_jax.data import datasets, tfds_features
from vision_jax.errors import DataError


def _objects(boxes, labels, **extra):
  return {"bbox": [tfds.features.BBox(*b) for b in boxes], "label": labels, **extra}


# VOC: a 40 x 60 image (H x W) with three objects, normalised [ymin, xmin, ymax, xmax].
VOC_BOXES = [(0.1, 0.25, 0.5, 0.75), (0.0, 0.0, 1.0, 0.5), (0.5, 0.5, 0.6, 0.6)]
VOC_PIXEL_BOXES = [[15, 4, 45, 20], [0, 0, 30, 40], [30, 20, 36, 24]]  # x * 60, y * 40; areas 480, 1200, 24
VOC_LABELS = [3, 7, 1]


def _voc_record(index, boxes, labels):
  n = len(boxes)
  return {"image": rgb(40, 60, index), "image/filename": f"{index}.jpg", "labels": sorted(set(labels)),
          "labels_no_difficult": sorted(set(labels)),
          "objects": _objects(boxes, labels, is_difficult=[False] * n, is_truncated=[False] * n, pose=[0] * n)}


class _CocoLike(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """COCO's detection FeaturesDict (the real builder's `_info` needs TensorFlow)."""

  VERSION = tfds.core.Version("1.1.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="2017")]

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(encoding_format="jpeg"), "image/filename": tfds.features.Text(),
        "image/id": np.int64,
        "objects": tfds.features.Sequence({
            "id": np.int64, "area": np.int64, "bbox": tfds.features.BBoxFeature(),
            "label": tfds.features.ClassLabel(num_classes=80), "is_crowd": np.bool_})}))

  def _generate_examples(self):
    raise NotImplementedError


# COCO: a 50 x 100 image; the middle object is a crowd.
COCO_BOXES = [(0.2, 0.1, 0.6, 0.3), (0.0, 0.0, 1.0, 1.0), (0.5, 0.5, 1.0, 0.9)]
COCO_KEPT_PIXEL_BOXES = [[10, 10, 30, 30], [50, 25, 90, 50]]


def _coco_record():
  return {"image": encoded(np.full((50, 100, 3), 128, np.uint8), "JPEG"), "image/filename": "a.jpg", "image/id": 7,
          "objects": _objects(COCO_BOXES, [5, 0, 79], id=[1, 2, 3], area=[1, 2, 3], is_crowd=[False, True, False])}


class _BoxesOnly(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A dataset no mapping knows by name: an image and objects with boxes but no labels."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3)),
        "objects": tfds.features.Sequence({"bbox": tfds.features.BBoxFeature()})}))

  def _generate_examples(self):
    raise NotImplementedError


class _TextOnly(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Nothing vision_jax can read."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "text": tfds.features.Text()}))

  def _generate_examples(self):
    raise NotImplementedError


PET_TRIMAP = np.array([[1, 2, 3, 1, 2], [3, 3, 1, 2, 2], [2, 1, 1, 1, 3], [2, 2, 2, 2, 2]], np.uint8)
PET_CLASSES = np.array([[1, 0, 255, 1, 0], [255, 255, 1, 0, 0], [0, 1, 1, 1, 255], [0, 0, 0, 0, 0]], np.uint8)
CELEB_A_LANDMARKS = {"lefteye_x": 69, "lefteye_y": 111, "righteye_x": 108, "righteye_y": 112, "nose_x": 88,
                     "nose_y": 134, "leftmouth_x": 72, "leftmouth_y": 152, "rightmouth_x": 105, "rightmouth_y": 153}
CELEB_A_KEYPOINTS = [[69.5, 111.5, 1], [108.5, 112.5, 1], [88.5, 134.5, 1], [72.5, 152.5, 1], [105.5, 153.5, 1]]


def _builders():
  voc = tfds.builder_cls("voc")
  celeb_a = tfds.builder_cls("celeb_a")
  attribute_names = sorted(celeb_a(data_dir="/nonexistent").info.features["attributes"].keys())
  attributes = {n: n in ("Smiling", "Young") for n in attribute_names}
  return [
      (fake_builder("voc", voc, {"train": [_voc_record(0, VOC_BOXES, VOC_LABELS), _voc_record(1, [], [])]}), "2007"),
      (fake_builder("coco", _CocoLike, {"train": [_coco_record()]}), "2017"),
      (fake_builder("oxford_iiit_pet", tfds.builder_cls("oxford_iiit_pet"), {"train": [{
          "image": rgb(4, 5, 9), "label": 12, "species": 1, "file_name": "x.jpg",
          "head_bbox": tfds.features.BBox(0.0, 0.0, 0.5, 0.5), "segmentation_mask": encoded(PET_TRIMAP)}]}), None),
      (fake_builder("celeb_a", celeb_a, {"train": [{
          "image": rgb(218, 178, 3), "landmarks": CELEB_A_LANDMARKS, "attributes": attributes,
          "identity": {"Identity_No": 2880}}]}), None),
      (fake_builder("lfw", tfds.builder_cls("lfw"), {
          "train": [{"image": rgb(250, 250, i), "label": name} for i, name in enumerate(["Zoe_Z", "Adam_A", "Zoe_Z"])],
          "test": [{"image": rgb(250, 250, 0), "label": "Bob_B"}]}), None),
      (fake_builder("omniglot", tfds.builder_cls("omniglot"), {"train": [{
          "image": rgb(105, 105, 255), "label": 1000, "alphabet": 42, "alphabet_char_id": 3}]}), None),
      (fake_builder("cycle_gan", tfds.builder_cls("cycle_gan"), {
          "trainA": [{"image": rgb(6, 8, 1), "label": 0}], "trainB": [{"image": rgb(5, 7, 2), "label": 1}]}),
       "horse2zebra"),
      (fake_builder("boxes_only", _BoxesOnly, {"train": [{"image": rgb(10, 20, 0), "objects": {
          "bbox": [tfds.features.BBox(0.0, 0.5, 1.0, 1.0)]}}]}), None),
      (fake_builder("text_only", _TextOnly, {"train": [{"text": "hello"}]}), None),
  ]


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory) -> str:
  """A TFDS data dir holding every fake dataset, prepared as array_record."""
  path = str(tmp_path_factory.mktemp("fake_tfds"))
  tfds.disable_progress_bar()
  for builder_cls, config in _builders():
    kwargs = {"config": config} if config else {}
    builder_cls(data_dir=path, file_format="array_record", **kwargs).download_and_prepare()
  return path


def test_pixel_boxes_scales_and_reorders():
  got = tfds_features.pixel_boxes([[0.1, 0.25, 0.5, 0.75]], height=40, width=60)
  np.testing.assert_allclose(got, [[15, 4, 45, 20]], atol=1e-5)
  assert got.dtype == np.float32 and tfds_features.pixel_boxes([], 3, 4).shape == (0, 4)


def test_voc_boxes_in_pixels_padded_keeping_the_largest(fake_dir):
  source, spec = datasets.load("voc/2007", "train", fake_dir, max_objects=2)
  assert spec.num_examples == 2 and spec.image_shape == (0, 0, 3) and not spec.has_labels
  assert spec.features["box_labels"].num_classes == 20 and spec.features["box_labels"].class_names[3] == "boat"
  assert spec.extra_features == {"boxes": (2, 4), "box_labels": (2,), "num_objects": ()}
  full, empty = source.__getitems__([0, 1])
  assert full["image"].shape == (40, 60, 3) and int(full["image"][0, 0, 0]) == 0
  np.testing.assert_allclose(full["boxes"], VOC_PIXEL_BOXES[:2], atol=1e-4)  # the 24-pixel box is dropped
  assert full["box_labels"].tolist() == VOC_LABELS[:2] and int(full["num_objects"]) == 2
  assert source.drop_counter.objects == 1
  np.testing.assert_array_equal(empty["boxes"], np.zeros((2, 4)))
  assert empty["box_labels"].tolist() == [-1, -1] and int(empty["num_objects"]) == 0
  _, spec32 = datasets.load("voc/2007", "train", fake_dir)
  assert spec32.features["boxes"].shape == (32, 4)


def test_coco_crowd_objects_are_removed(fake_dir):
  source, spec = datasets.load("coco/2017", "train", fake_dir, max_objects=4)
  example = source[0]
  assert spec.features["box_labels"].num_classes == 80 and example["image"].shape == (50, 100, 3)
  np.testing.assert_allclose(example["boxes"][:2], COCO_KEPT_PIXEL_BOXES, atol=1e-4)
  assert example["box_labels"].tolist() == [5, 79, -1, -1] and int(example["num_objects"]) == 2


def test_pet_trimap_becomes_pet_background_and_ignored_border(fake_dir):
  source, spec = datasets.load("oxford_iiit_pet", "train", fake_dir)
  example = source[0]
  np.testing.assert_array_equal(example["semantic_mask"], PET_CLASSES)
  assert example["semantic_mask"].dtype == np.uint8 and int(example["label"]) == 12 and int(example["species"]) == 1
  mask = spec.features["semantic_mask"]
  assert (mask.kind, mask.shape, mask.class_names) == ("mask", (0, 0), ("background", "pet"))
  assert spec.num_classes == 37 and spec.features["species"].num_classes == 2


def test_celeb_a_landmarks_are_pixel_centres_with_flip_pairs(fake_dir):
  source, spec = datasets.load("celeb_a", "train", fake_dir)
  example = source[0]
  np.testing.assert_array_equal(example["keypoints"], CELEB_A_KEYPOINTS)
  keypoints = spec.features["keypoints"]
  assert keypoints.flip_pairs == ((0, 1), (3, 4)) and keypoints.keypoint_names[0] == "left_eye"
  names = spec.features["attributes"].class_names
  assert len(names) == 40 and example["attributes"].sum() == 2
  assert example["attributes"][names.index("Smiling")] == 1 and example["attributes"][names.index("Young")] == 1
  assert int(example["identity"]) == 2880 and spec.image_shape == (218, 178, 3) and not spec.has_labels


def test_lfw_names_are_sorted_identities_shared_by_all_splits(fake_dir):
  train, spec = datasets.load("lfw", "train", fake_dir)
  test, _ = datasets.load("lfw", "test", fake_dir)
  assert [int(e["identity"]) for e in train.__getitems__([0, 1, 2])] == [2, 0, 2]
  assert int(test[0]["identity"]) == 1
  assert spec.features["identity"].class_names == ("Adam_A", "Bob_B", "Zoe_Z") and not spec.has_labels


def test_omniglot_character_label_and_alphabet(fake_dir):
  source, spec = datasets.load("omniglot", "train", fake_dir)
  example = source[0]
  assert int(example["label"]) == 1000 and int(example["alphabet"]) == 42
  assert spec.num_classes == 1623 and spec.features["alphabet"].num_classes == 50
  assert spec.image_shape == (105, 105, 3)


def test_cycle_gan_domains_are_unlabelled_images(fake_dir):
  source_a, spec = datasets.load("cycle_gan/horse2zebra", "trainA", fake_dir)
  source_b, _ = datasets.load("cycle_gan/horse2zebra", "trainB", fake_dir)
  assert set(source_a[0]) == {"image"} and source_a[0]["image"].shape == (6, 8, 3)
  assert source_b[0]["image"].shape == (5, 7, 3) and int(source_b[0]["image"][0, 0, 0]) == 2
  assert spec.label_key == "" and spec.image_shape == (0, 0, 3) and spec.extra_features == {}


def test_unknown_detection_dataset_maps_by_its_features(fake_dir):
  source, spec = datasets.load("boxes_only", "train", fake_dir, max_objects=1)
  np.testing.assert_allclose(source[0]["boxes"], [[10, 0, 20, 10]], atol=1e-5)
  assert source[0]["box_labels"].tolist() == [0] and spec.features["box_labels"].class_names == ("object",)


def test_dataset_without_images_is_a_clear_error(fake_dir):
  with pytest.raises(DataError, match="text_only has no image"):
    datasets.load("text_only", "train", fake_dir)

