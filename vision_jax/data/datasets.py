"""Datasets by name: the embedded MNIST sample, the generated datasets (`synthetic.NAMES`) and any TFDS dataset
prepared as array_record.

`load(name, split, data_dir)` returns a random-access data source (TFDS `as_data_source`, no TensorFlow
needed) and a `DatasetSpec` with what the model and task need to know.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import tensorflow_datasets as tfds

from vision_jax.data import embedded_mnist, synthetic
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import DataError

EMBEDDED = "mnist_embedded"


def default_data_dir() -> str:
  """The TFDS data directory: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def _builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
  if name == EMBEDDED:
    return embedded_mnist.prepare(data_dir)
  try:
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(
        f"unknown dataset {name!r}: use {EMBEDDED!r} (the embedded sample) or a TFDS dataset name such as "
        "'mnist', 'fashion_mnist', 'cifar10', 'imagenet2012' (see tfds.list_builders())") from None
  prepare_cmd = f"tfds build {name} --file_format=array_record --data_dir={data_dir}"
  if not builder.is_prepared():
    raise DataError(
        f"dataset {name!r} is not prepared under {data_dir}; prepare it once with `{prepare_cmd}` "
        "(needs tensorflow for that step only) or set dataset.data_dir to where it is prepared")
  if "array_record" not in str(builder.info.file_format):
    raise DataError(
        f"dataset {name!r} under {data_dir} is stored as {builder.info.file_format}, not array_record; "
        f"re-prepare it with `{prepare_cmd}`")
  return builder


def load(name: str, split: str, data_dir: str | None = None) -> tuple[Sequence[Any], DatasetSpec]:
  """Opens a split of a dataset as a random-access source.

  Args:
    name: "mnist_embedded", a generated dataset (`synthetic.NAMES`) or a TFDS dataset name (prepared as
      array_record).
    split: a TFDS split string, e.g. "train", "test", "train[:90%]".
    data_dir: TFDS data directory; `default_data_dir()` when empty.

  Returns:
    (source, spec): `source[i]` is a dict of NumPy arrays with at least spec.image_key and spec.label_key.

  Raises:
    DataError: unknown, unprepared or empty dataset, unknown split, or a non-image dataset.
  """
  if name in synthetic.NAMES:
    return synthetic.load(name, split)
  data_dir = data_dir or default_data_dir()
  builder = _builder(name, data_dir)
  info = builder.info
  image_key, label_key = info.supervised_keys or ("image", "label")
  features = info.features
  if image_key not in features or label_key not in features:
    raise DataError(f"dataset {name!r} has no ({image_key!r}, {label_key!r}) features; pick an image "
                    "classification dataset")
  try:
    source = builder.as_data_source(split=split)
  except (ValueError, KeyError) as e:
    raise DataError(f"dataset {name!r} has no split {split!r} (splits: {', '.join(info.splits)}): "
                    f"{str(e).splitlines()[0]}") from None
  if len(source) == 0:
    raise DataError(f"dataset {name!r} split {split!r} is empty; choose a non-empty split")
  image_shape = tuple(features[image_key].shape)
  if len(image_shape) != 3 or None in image_shape:
    image_shape = tuple(source[0][image_key].shape)
  label_feature = features[label_key]
  spec = DatasetSpec(
      name=name, split=split, num_examples=len(source), image_shape=image_shape,
      num_classes=int(label_feature.num_classes), class_names=tuple(label_feature.names),
      image_key=image_key, label_key=label_key)
  return source, spec
