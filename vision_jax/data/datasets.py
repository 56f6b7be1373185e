"""Datasets by name: the embedded MNIST sample, the generated datasets (`synthetic.NAMES`), any TFDS dataset
prepared as array_record, and the user's own files ("folder:PATH", "coco:PATH", ...; `vision_jax.data.formats`).

`load(name, split, data_dir)` returns a random-access data source (TFDS `as_data_source`, no TensorFlow
needed) and a `DatasetSpec` with what the model and task need to know. TFDS datasets beyond classification
(detection, segmentation, landmarks, identities, unlabelled images) are mapped to our typed features by
`tfds_features`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from typing import Any, Iterator, Sequence

import tensorflow_datasets as tfds

from vision_jax.data import embedded_mnist, synthetic, tfds_features
from vision_jax.data.features import DatasetSpec, make_spec
from vision_jax.errors import ConfigError, DataError

EMBEDDED = "mnist_embedded"
FORMAT_KINDS = ("folder", "coco", "voc", "yolo", "mask_pairs", "idx")  # "KIND:PATH" names, read by `formats.load`
# TFDS log lines (absl logger) that mean nothing to a user: a dataset's version folder exists but is not
# prepared yet (logged while preparing or probing a fresh data dir), and PIL rather than OpenCV decodes images.
_TFDS_NOISE = ("Variant folder ", "OpenCV is not installed")


class _TfdsNoiseFilter(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_TFDS_NOISE)


@contextlib.contextmanager
def quiet_tfds() -> Iterator[None]:
  """Drops the `_TFDS_NOISE` log lines of TFDS while the block runs; everything else is logged as usual."""
  logger = logging.getLogger("absl")
  noise_filter = _TfdsNoiseFilter()
  logger.addFilter(noise_filter)
  try:
    yield
  finally:
    logger.removeFilter(noise_filter)


def default_data_dir() -> str:
  """The TFDS data directory: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def _usable_data_dir(data_dir: str) -> str:
  """A local data dir that exists as a directory (created when missing); remote paths (gs://) as given."""
  if "://" in data_dir:
    return data_dir
  path = os.path.abspath(os.path.expanduser(data_dir))
  fix = "set dataset.data_dir (or TFDS_DATA_DIR) to a directory you can write to"
  if os.path.exists(path) and not os.path.isdir(path):
    raise DataError(f"TFDS data dir {path} is a file, not a directory; {fix}")
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise DataError(f"cannot create TFDS data dir {path} ({e.strerror}); {fix}") from None
  return path


def _prepare_embedded(data_dir: str) -> tfds.core.DatasetBuilder:
  try:
    return embedded_mnist.prepare(data_dir)
  except OSError as e:  # read-only or full data dir
    raise DataError(f"cannot prepare {EMBEDDED!r} under {data_dir} ({e.strerror or e}); set dataset.data_dir "
                    "(or TFDS_DATA_DIR) to a directory you can write to") from None


def _builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
  """The builder of a dataset prepared as array_record under data_dir; DataError when it is not."""
  if name == EMBEDDED:
    return _prepare_embedded(data_dir)
  prepare_cmd = f"tfds build {name} --file_format=array_record --data_dir={data_dir}"
  try:  # from the prepared files first: no builder code runs (some, e.g. coco's, would need TensorFlow)
    builder = tfds.core.read_only_builder.builder_from_files(name, data_dir=data_dir)
  except (tfds.core.registered.DatasetNotFoundError, ValueError):
    builder = None
  if builder is None:
    try:
      dataset_name, kwargs = tfds.core.naming.parse_builder_name_kwargs(name)
      configs = tfds.builder_cls(str(dataset_name)).builder_configs
    except (tfds.core.registered.DatasetNotFoundError, ValueError):
      raise DataError(
          f"unknown dataset {name!r}: use {EMBEDDED!r} (the embedded sample), a TFDS dataset name such as "
          "'mnist', 'cifar10', 'voc/2007', 'coco/2017' (see tfds.list_builders()) or KIND:PATH for your own "
          f"files (kinds: {', '.join(FORMAT_KINDS)})") from None
    config = kwargs.get("config")
    if configs and (config is None or config not in configs):
      raise DataError(f"dataset {name!r} names none of the configs of {dataset_name}; use {dataset_name}/CONFIG "
                      f"with CONFIG one of {', '.join(configs)}")
    raise DataError(
        f"dataset {name!r} is not prepared under {data_dir}; prepare it once with `{prepare_cmd}` "
        "(needs tensorflow for that step only) or set dataset.data_dir to where it is prepared")
  stored = builder.info.available_file_formats()
  if tfds.core.file_adapters.FileFormat.ARRAY_RECORD not in stored:
    raise DataError(
        f"dataset {name!r} under {data_dir} is stored as {', '.join(sorted(f.value for f in stored))}, not "
        f"array_record; re-prepare it with `{prepare_cmd}`")
  return builder


def _load_format(name: str, split: str, **options: Any) -> tuple[Sequence[Any], DatasetSpec] | None:
  """The user's files for a KIND:PATH name (`formats.load`); None for a versioned TFDS name (NAME:VERSION)."""
  kind, path = name.split(":", 1)
  if kind not in FORMAT_KINDS and tfds.core.Version.is_valid(path):  # a TFDS name with a version, mnist:3.0.1
    return None
  if kind not in FORMAT_KINDS:
    raise DataError(f"unknown dataset kind {kind!r} in {name!r}; use one of {', '.join(FORMAT_KINDS)} as "
                    "KIND:PATH (e.g. folder:/data/pets), a TFDS name or a generated dataset")
  if not path:
    raise DataError(f"dataset {name!r} names no path; write {kind}:PATH")
  formats = importlib.import_module("vision_jax.data.formats")
  return formats.load(kind, path, split, **options)


def _tfds_source(name: str, split: str, data_dir: str,
                 max_objects: int) -> tuple[Sequence[Any], DatasetSpec]:
  builder = _builder(name, data_dir)
  info = builder.info
  try:
    source = builder.as_data_source(split=split)
  except (ValueError, KeyError) as e:
    raise DataError(f"dataset {name!r} has no split {split!r} (splits: {', '.join(info.splits)}): "
                    f"{str(e).splitlines()[0]}") from None
  if len(source) == 0:
    raise DataError(f"dataset {name!r} split {split!r} is empty; choose a non-empty split")
  first = source[0]  # decoded here, where TFDS' one-time note about its image decoder is filtered
  mapping = tfds_features.mapping(builder, max_objects)
  if mapping is not None:
    return tfds_features.MappedSource(source, mapping), make_spec(name, split, len(source), mapping.features)
  image_key, label_key = info.supervised_keys or ("image", "label")
  features = info.features
  image_shape = tuple(features[image_key].shape)
  if len(image_shape) != 3 or None in image_shape:
    image_shape = tuple(first[image_key].shape)
  label_feature = features[label_key]
  spec = DatasetSpec(
      name=name, split=split, num_examples=len(source), image_shape=image_shape,
      num_classes=int(label_feature.num_classes), class_names=tuple(label_feature.names),
      image_key=image_key, label_key=label_key)
  return source, spec


def load(name: str, split: str, data_dir: str | None = None, *, max_objects: int = 32,
         validation_fraction: float = 0.2, seed: int = 0, channels: int = 3,
         strict: bool = False) -> tuple[Sequence[Any], DatasetSpec]:
  """Opens a split of a dataset as a random-access source.

  Args:
    name: "mnist_embedded", a generated dataset (`synthetic.NAMES`), a TFDS dataset name prepared as
      array_record ("mnist", "voc/2007", "coco/2017", "oxford_iiit_pet", ...; see `tfds_features`), or
      "KIND:PATH" for the user's files, KIND one of `FORMAT_KINDS`.
    split: a split string, e.g. "train", "test", "train[:90%]".
    data_dir: TFDS data directory; `default_data_dir()` when empty (created when missing).
    max_objects: rows that boxes, box labels and instance masks are padded to (detection datasets).
    validation_fraction: for KIND:PATH data without a validation split, the fraction held out for it.
    seed: for KIND:PATH data, the seed of that hold-out.
    channels: for KIND:PATH data, the channels images are decoded to (1 or 3).
    strict: for KIND:PATH data, whether a bad annotation is an error rather than a skipped example.

  Returns:
    (source, spec): `source[i]` is a dict of NumPy arrays with at least spec.image_key, spec.label_key (when
    the spec has a label) and the keys of spec.extra_features.

  Raises:
    DataError: unknown, unprepared or empty dataset, unknown split, unusable data dir, or a dataset with
      nothing vision_jax can read.
    ConfigError: max_objects below 1.
  """
  if name in synthetic.NAMES:
    return synthetic.load(name, split)
  if max_objects < 1:
    raise ConfigError(f"max_objects must be at least 1, got {max_objects}; set input.max_objects to 1 or more")
  if ":" in name:
    loaded = _load_format(name, split, max_objects=max_objects, validation_fraction=validation_fraction, seed=seed,
                          channels=channels, strict=strict)
    if loaded is not None:
      return loaded
  data_dir = _usable_data_dir(data_dir or default_data_dir())
  with quiet_tfds():
    return _tfds_source(name, split, data_dir, max_objects)


def source_notes(source: Any, max_objects: int) -> list[str]:
  """One-time notes of a source (unreadable files skipped, objects dropped over `max_objects`), each at most once."""
  if hasattr(source, "notes"):
    return list(source.notes())
  counter = getattr(source, "drop_counter", None)
  line = counter.report(f"dataset split of {len(source)} examples", max_objects) if counter is not None else None
  return [line] if line else []
