"""Specs of datasets that cannot be loaded on a test machine (real TFDS datasets a user prepares), so that every
config in configs/ can build its task and networks in `tests/test_all_configs.py`.

Each entry is dataset name -> a function returning a training-split `DatasetSpec` with the features the real
dataset's loader gives (`vision_jax.data.tfds_features`), at a representative stored size.
"""

from typing import Callable

from vision_jax.data.features import DatasetSpec, Feature, make_spec, object_features


def _classification(name: str, shape: tuple[int, int, int], num_classes: int) -> Callable[[], DatasetSpec]:
  names = tuple(str(i) for i in range(num_classes))
  return lambda: make_spec(name, "train", 1000, {"image": Feature("image", shape, "uint8"),
                                                 "label": Feature("label", (), "int32", num_classes, names)})


# dataset name -> spec factory; families add the real datasets their configs name.
OFFLINE_SPECS: dict[str, Callable[[], DatasetSpec]] = {
    # One domain per split (trainA, trainB, ...), unlabelled images (tfds_features: cycle_gan).
    "cycle_gan/horse2zebra": lambda: make_spec("cycle_gan/horse2zebra", "trainA", 1067,
                                               {"image": Feature("image", (0, 0, 3), "uint8")}),
    "mnist_embedded": _classification("mnist_embedded", (28, 28, 1), 10),
    # Aligned 218x178 faces with 5 landmarks, 40 binary attributes and an identity (tfds_features: celeb_a).
    "celeb_a": lambda: make_spec("celeb_a", "train", 162770, {
        "image": Feature("image", (218, 178, 3), "uint8"),
        "keypoints": Feature("keypoints", (5, 3), "float32"),
        "attributes": Feature("value", (40,), "float32"),
        "identity": Feature("identity", (), "int32")}),
    "cifar10": _classification("cifar10", (32, 32, 3), 10),
    "imagenet2012": _classification("imagenet2012", (500, 375, 3), 1000),
    "omniglot": lambda: make_spec("omniglot", "train", 19280, {
        "image": Feature("image", (105, 105, 3), "uint8"),
        "label": Feature("label", (), "int32", 1623, tuple(str(i) for i in range(1623))),
        "alphabet": Feature("label", (), "int32", 50, tuple(str(i) for i in range(50)))}),
    "lfw": lambda: make_spec("lfw", "train", 13233, {
        "image": Feature("image", (250, 250, 3), "uint8"),
        "identity": Feature("identity", (), "int32", 5749, tuple(f"person_{i}" for i in range(5749)))}),
    # Images of varying size (0 x 0), as tfds_features maps them; the trimap gives background/pet, border ignored.
    "oxford_iiit_pet": lambda: make_spec("oxford_iiit_pet", "train", 3680, {
        "image": Feature("image", (0, 0, 3), "uint8"),
        "label": Feature("label", (), "int32", 37, tuple(str(i) for i in range(37))),
        "species": Feature("label", (), "int32", 2, ("Cat", "Dog")),
        "semantic_mask": Feature("mask", (0, 0), "uint8", 2, ("background", "pet"))}),
    # configs/seg_folder_unet.py's default path: a folder of RGB images and masks of 3 classes.
    "mask_pairs:data/segmentation": lambda: make_spec("mask_pairs:data/segmentation", "train", 100, {
        "image": Feature("image", (0, 0, 3), "uint8"),
        "semantic_mask": Feature("mask", (0, 0), "uint8", 3, ("0", "1", "2"))}),
    # Detection datasets of varying image size (0 x 0), as tfds_features maps them, padded to the configs' objects.
    "voc/2007": lambda: make_spec("voc/2007", "train", 5011, {
        "image": Feature("image", (0, 0, 3), "uint8"),
        **object_features(48, 20, tuple(str(i) for i in range(20)))}),
    "coco/2017": lambda: make_spec("coco/2017", "train", 118287, {
        "image": Feature("image", (0, 0, 3), "uint8"),
        **object_features(100, 80, tuple(str(i) for i in range(80)))}),
}
