"""Specs of datasets that cannot be loaded on a test machine (real TFDS datasets a user prepares), so that every
config in configs/ can build its task and networks in `tests/test_all_configs.py`.

Each entry is dataset name -> a function returning a training-split `DatasetSpec` with the features the real
dataset's loader gives (`vision_jax.data.tfds_features`), at a representative stored size.
"""

from typing import Callable

from vision_jax.data.features import DatasetSpec, Feature, make_spec


def _classification(name: str, shape: tuple[int, int, int], num_classes: int) -> Callable[[], DatasetSpec]:
  names = tuple(str(i) for i in range(num_classes))
  return lambda: make_spec(name, "train", 1000, {"image": Feature("image", shape, "uint8"),
                                                 "label": Feature("label", (), "int32", num_classes, names)})


# dataset name -> spec factory; families add the real datasets their configs name.
OFFLINE_SPECS: dict[str, Callable[[], DatasetSpec]] = {
    "mnist_embedded": _classification("mnist_embedded", (28, 28, 1), 10),
    "cifar10": _classification("cifar10", (32, 32, 3), 10),
    "imagenet2012": _classification("imagenet2012", (500, 375, 3), 1000),
}
