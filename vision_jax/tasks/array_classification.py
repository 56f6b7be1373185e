"""Classification of signals [N, T, C] and volumes [N, D, H, W, C]: the image classification task with only
elementwise input ops.

Image ops take [N, H, W, C] batches, and the geometric ones (crops, flips, rotations) mean nothing for a signal
or a volume. Here `input.preprocess` and `input.normalize` run on a [N, P, 1, C] view of each example's P
samples or voxels (so `to_float` and `normalize` work at any rank) and `input.augment` must be empty.
Everything else (model, loss, metrics, step bodies) is `ClassificationTask`'s. `tasks.get` picks this task for
`task = "classification"` when the dataset's examples are not images.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import ml_collections
import optax

from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError, UserError
from vision_jax.tasks.classification import ClassificationTask


def _kind(shape: tuple[int, ...]) -> str:
  return {2: "signals", 4: "volumes"}.get(len(shape), f"rank-{len(shape)} examples")


class ArrayClassificationTask(ClassificationTask):
  """`ClassificationTask` for examples that are not images (see the module docstring).

  Args:
    config: the experiment config.
    spec: the training split's `DatasetSpec`; `spec.image_shape` is (T, C), (D, H, W, C) or another rank.
  """

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    self.kind = _kind(tuple(spec.image_shape))
    if config.input.augment:
      raise ConfigError(f"input.augment={config.input.augment!r} holds image ops, which do not apply to the "
                        f"{self.kind} of dataset {spec.name!r}; set --config.input.augment=''")
    super().__init__(config, spec)

  def _elementwise(self, ops, rng: jax.Array, x: jax.Array) -> jax.Array:
    n, *spatial, channels = x.shape
    size = math.prod(spatial)
    out = ops(rng, x.reshape(n, size, 1, channels))
    if out.shape[:3] != (n, size, 1):
      raise ConfigError(f"an input op changed the size of the {self.kind}; only elementwise ops (to_float, "
                        "normalize) apply to them")
    return out.reshape(n, *spatial, out.shape[-1])

  def prepare_images(self, rng: jax.Array, images: jax.Array, train: bool) -> jax.Array:
    """Stored examples [N, *shape] -> model input: preprocess, then normalize (there is no augmentation)."""
    del train
    x = self._elementwise(self.input_ops.preprocess, jax.random.fold_in(rng, 0), images)
    return self._elementwise(self.input_ops.normalize, jax.random.fold_in(rng, 2), x)

  def train_inputs(self, rng: jax.Array, images: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Training batch -> (model input, label-smoothed one-hot targets [N, K])."""
    targets = optax.smooth_labels(jax.nn.one_hot(labels, self.num_classes), self.label_smoothing)
    return self.prepare_images(rng, images, train=True), targets

  def predict(self, state, paths) -> list[str]:
    """Top-k classes of examples stored as NumPy `.npy` files of the dataset's example shape."""
    from vision_jax.tasks import classification_eval  # pylint: disable=import-outside-toplevel
    examples = np.stack([read_example(p, tuple(self.spec.image_shape), self.kind) for p in paths])
    return classification_eval.top_k_lines(self, state, examples, paths)


def read_example(path: str, shape: tuple[int, ...], kind: str) -> np.ndarray:
  """A `.npy` file holding one example of `shape` (no pickles); one-line UserError otherwise."""
  try:
    array = np.load(path, allow_pickle=False)
  except FileNotFoundError:
    raise UserError(f"cannot read {path}: no such file; pass .npy files holding one example each") from None
  except (ValueError, OSError) as e:
    raise UserError(f"cannot read {path} as a NumPy .npy array ({str(e).splitlines()[0]}); the {kind} of this "
                    "run are predicted from .npy files (np.save)") from None
  if array.ndim == len(shape) - 1 and shape[-1] == 1:
    array = array[..., None]
  if tuple(array.shape) != shape or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
    raise UserError(f"{path} holds a {array.dtype} array of shape {tuple(array.shape)}; the model takes {kind} of "
                    f"shape {shape}")
  return array
