"""Small fake TFDS datasets for tests: builders that subclass a real TFDS builder class (so the FeaturesDict is the
real one) and only replace its examples, prepared to array_record in a temporary data dir by the caller."""

import io

from etils import epath
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image


def encoded(image: np.ndarray, image_format: str = "PNG") -> bytes:
  """`image` [H, W] or [H, W, 3] uint8 as PNG (or `image_format`) bytes, the form TFDS features encode."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format=image_format)
  return buffer.getvalue()


def rgb(height: int, width: int, value: int) -> bytes:
  """A flat RGB image of `value`, encoded."""
  return encoded(np.full((height, width, 3), value, np.uint8))


def fake_builder(name: str, base: type, examples: dict, configs: tuple = ()) -> type:
  """A builder named `name` with `base`'s features whose splits hold `examples` (split -> list of records)."""

  class Fake(base, skip_registration=True):

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:  # TFDS' default lookup imports the optional `importlib_resources`
      return epath.Path(__file__)

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._fake_examples(records) for split, records in examples.items()}

    def _fake_examples(self, records):
      yield from enumerate(records)

  Fake.name = name
  if configs:
    Fake.BUILDER_CONFIGS = list(configs)
  return Fake
