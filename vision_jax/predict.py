"""`--mode=predict`: classify PNG/JPEG files with a trained checkpoint and print the top-k classes."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from PIL import Image, UnidentifiedImageError

from vision_jax.errors import ConfigError, UserError


def read_image(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
  """Reads an image file as uint8 [H, W, C] in the dataset's stored shape.

  Grayscale files give C=1, colour files C=3 (an alpha channel is dropped). Images of another size are
  resized (bilinear) to the dataset's H x W.

  Raises:
    UserError: unreadable file, or channels that differ from the model's.
  """
  height, width, channels = image_shape
  try:
    with Image.open(path) as image:
      image.load()
      mode = image.mode
      if mode in ("RGBA", "P", "CMYK", "YCbCr"):
        image = image.convert("RGB")
      elif mode in ("LA", "I", "I;16", "F", "1"):
        image = image.convert("L")
      if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
      array = np.asarray(image, dtype=np.uint8)
  except FileNotFoundError:
    raise UserError(f"cannot read {path}: no such file; pass existing PNG/JPEG files") from None
  except (UnidentifiedImageError, OSError) as e:
    raise UserError(f"cannot read {path} as an image ({type(e).__name__}); pass PNG or JPEG files") from None
  if array.ndim == 2:
    array = array[:, :, None]
  if array.shape[-1] != channels:
    fix = "convert it to grayscale" if channels == 1 else "convert it to RGB"
    raise UserError(f"{path} has {array.shape[-1]} channel(s) but the model expects {channels}; {fix} first")
  return array


def predict(config: ml_collections.ConfigDict, workdir: str, paths: Sequence[str]) -> list[dict[str, Any]]:
  """Top-k classes of each image file, from the best (else newest) checkpoint in `workdir`.

  Returns:
    One dict per file: {"path", "top_k": [(class_name, probability), ...]}.
  """
  from vision_jax import train

  if not paths:
    raise ConfigError("--mode=predict needs image files: pass --images=a.png,b.jpg")
  s = train.setup(config, workdir)
  images = np.stack([read_image(p, s.train_spec.image_shape) for p in paths])
  restored = s.checkpointer.restore_for_eval(s.abstract_state)
  s.checkpointer.close()
  if restored is None:
    raise ConfigError(f"no checkpoint in {workdir}; train first (--mode=train) or point --workdir at a run")
  state, _ = restored
  probs = np.asarray(jax.nn.softmax(jax.jit(s.task.logits)(state, images), axis=-1))
  k = min(config.predict.top_k, probs.shape[-1])
  names = s.train_spec.class_names
  results = []
  for path, p in zip(paths, probs):
    top = np.argsort(-p, kind="stable")[:k]
    results.append({"path": path, "top_k": [(names[i], float(p[i])) for i in top]})
  return results
