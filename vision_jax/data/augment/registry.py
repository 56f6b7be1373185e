"""The op registry, the `Sample` ops work on, and pipelines built from config strings.

An op is a pure function `op(rng, sample) -> sample` on a `Sample` (images and optional boxes, soft targets,
masks, keypoints) built by a factory registered under a name. `build("a|b(k=v)")` chains ops into a `Pipeline`; each op
gets `fold_in(rng, position)`, so a pipeline is reproducible from one key and jit-able.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.op_spec import parse_pipeline
from vision_jax.errors import ConfigError, DataError


class Sample(NamedTuple):
  """A batch as ops see it (a pytree, so it passes through `jax.jit`).

  Attributes:
    images: [N, H, W, C] images.
    boxes: [N, M, 4] boxes (x1, y1, x2, y2) in pixels of the image they belong to, or None. Pixel (row r,
      column c) covers [c, c + 1) x [r, r + 1), so a box around pixels c0..c1 has x1 = c0, x2 = c1 + 1, as in
      `vision_jax.ops.boxes`. Geometric ops move boxes with the pixels and clip them to the image; a pipeline
      with `min_visible` > 0 sets boxes that keep less of their area (`visible`) to zeros, like padding rows.
    targets: [N, K] class probabilities (one-hot or smoothed labels), or None; mixing ops mix them.
    masks: [N, H, W, K] integer masks, or None: K channels warped with the pixels by nearest-neighbour
      sampling, 0 where nothing was (outside the image, padding). `annotations.pack_masks` stores a semantic mask and
      instance masks in it (0 meaning "no label" in every channel) and `annotations.unpack_masks` gets them back.
    keypoints: [N, ..., K, 3] (x, y, visibility) in pixels, or None; moved with the pixels, visibility 0 where
      they leave the image.
    keypoint_flip: [K] int32 permutation applied to the keypoints when an image is mirrored left-right (left and
      right points swap, `annotations.flip_permutation`), or None (no swap).
    visible: [N, M] float32 fraction of each box's area still inside the image (a product over the ops, each
      measuring the axis-aligned box around the moved corners), or None; a pipeline run with boxes sets it (0
      for invalid and padding boxes).
  """

  images: jax.Array
  boxes: jax.Array | None = None
  targets: jax.Array | None = None
  masks: jax.Array | None = None
  keypoints: jax.Array | None = None
  keypoint_flip: jax.Array | None = None
  visible: jax.Array | None = None


Op = Callable[[jax.Array, Sample], Sample]
_FACTORIES: dict[str, Callable[..., Op]] = {}
_MIXES_LABELS: set[str] = set()


def register(name: str, mixes_labels: bool = False):
  """Decorator registering an op factory `factory(**kwargs) -> op(rng, sample) -> sample` under `name`.

  Args:
    name: the name used in pipeline strings.
    mixes_labels: the op combines examples and needs `Sample.targets` (mixup, cutmix).
  """

  def decorator(factory):
    if name in _FACTORIES:
      raise ValueError(f"image op {name!r} is registered twice")
    _FACTORIES[name] = factory
    if mixes_labels:
      _MIXES_LABELS.add(name)
    return factory

  return decorator


def pixel_op(fn: Callable[[jax.Array, jax.Array], jax.Array]) -> Op:
  """Lifts `fn(rng, images) -> images`, which moves no pixel and mixes no example, to an `Op`."""
  return lambda rng, sample: sample._replace(images=fn(rng, sample.images))


def names() -> list[str]:
  """Sorted names of the registered ops."""
  return sorted(_FACTORIES)


def _check_sample(sample: Sample) -> None:
  shape = np.shape(sample.images)
  if len(shape) != 4:
    raise DataError(f"image ops take a batch [N, H, W, C]; got shape {shape}: add the batch axis (x[None])")
  if sample.boxes is not None and (np.ndim(sample.boxes) != 3 or np.shape(sample.boxes)[::2] != (shape[0], 4)):
    raise DataError(f"boxes must be [N, M, 4] (x1, y1, x2, y2) for images {shape}; got {np.shape(sample.boxes)}")
  if sample.targets is not None and (np.ndim(sample.targets) != 2 or np.shape(sample.targets)[0] != shape[0]):
    raise DataError(f"targets must be [N, K] class probabilities for images {shape}; got {np.shape(sample.targets)}")
  if sample.masks is not None and (np.ndim(sample.masks) != 4 or np.shape(sample.masks)[:3] != shape[:3]
                                   or not np.issubdtype(sample.masks.dtype, np.integer)):
    raise DataError(f"masks must be integer [N, H, W, K] for images {shape}; got {sample.masks.dtype} "
                    f"{np.shape(sample.masks)} (augment.annotations.pack_masks builds them)")
  keypoints = sample.keypoints
  if keypoints is not None and (np.ndim(keypoints) < 3 or np.shape(keypoints)[0] != shape[0]
                                or np.shape(keypoints)[-1] != 3):
    raise DataError(f"keypoints must be [N, K, 3] (x, y, visibility) for images {shape}; got {np.shape(keypoints)}")
  flip = sample.keypoint_flip
  if flip is not None and (keypoints is None or np.shape(flip) != np.shape(keypoints)[-2:-1]):
    raise DataError(f"keypoint_flip must be a permutation [K] of the {np.shape(keypoints)[-2:-1]} keypoints; got "
                    f"shape {np.shape(flip)}")


class Pipeline:
  """Ops chained by a config string; call it on images, or `apply` it to images with boxes and targets.

  Example:
    >>> pipeline = build("flip_lr|rotate(degrees=10)|mixup(alpha=0.2)")
    >>> out = pipeline.apply(jax.random.PRNGKey(0), images, targets=jax.nn.one_hot(labels, 10))
    >>> out.images, out.targets
  """

  def __init__(self, spec: str, ops: list[tuple[str, Op]], min_visible: float = 0.0):
    if not 0.0 <= min_visible <= 1.0:
      raise ConfigError(f"min_visible={min_visible} is a fraction of a box's area; use a value in [0, 1]")
    self.spec = spec
    self.min_visible = float(min_visible)
    self._ops = ops
    self._run = jax.jit(self._run_ops)  # one compilation for eager (notebook) calls; inlined under an outer jit

  @property
  def mixes_labels(self) -> bool:
    """Whether some op combines examples, so that the pipeline needs and changes targets."""
    return any(name in _MIXES_LABELS for name, _ in self._ops)

  def apply(self, rng: jax.Array, images: jax.Array, boxes: jax.Array | None = None,
            targets: jax.Array | None = None, masks: jax.Array | None = None, keypoints: jax.Array | None = None,
            keypoint_flip: jax.Array | None = None) -> Sample:
    """Runs the ops on a batch.

    Args:
      rng: a PRNG key; op i uses `fold_in(rng, i)`.
      images: [N, H, W, C] images.
      boxes: optional [N, M, 4] xyxy pixel boxes, moved with the pixels by geometric ops.
      targets: optional [N, K] class probabilities, required by label-mixing ops.
      masks: optional integer [N, H, W, K] masks (`annotations.pack_masks`), moved with the pixels (nearest).
      keypoints: optional [N, ..., K, 3] (x, y, visibility) pixel keypoints, moved with the pixels.
      keypoint_flip: optional [K] permutation swapping left and right keypoints on a left-right flip
        (`annotations.flip_permutation(K, feature.flip_pairs)`).

    Returns:
      The transformed `Sample`. With boxes, `visible` [N, M] is the fraction of each box's area left in the
      image and `visible > 0` marks the valid objects: boxes that left the image are zero-area on its border
      (visible 0), and with `min_visible` > 0 boxes keeping less than it are zeros with visible 0, like padding
      rows (their labels are the caller's to set to -1).
    """
    if keypoint_flip is not None:
      keypoint_flip = jnp.asarray(keypoint_flip, jnp.int32)
    sample = Sample(images, boxes, targets, masks, keypoints, keypoint_flip)
    _check_sample(sample)
    if boxes is not None:
      sample = sample._replace(visible=(box_areas(boxes) > 0).astype(jnp.float32))
    return self._run(rng, sample) if self._ops else sample

  def _run_ops(self, rng: jax.Array, sample: Sample) -> Sample:
    for i, (_, op) in enumerate(self._ops):
      sample = op(jax.random.fold_in(rng, i), sample)
    if sample.boxes is not None and sample.visible is not None and self.min_visible > 0:
      valid = sample.visible >= self.min_visible
      sample = sample._replace(boxes=jnp.where(valid[..., None], sample.boxes, jnp.zeros_like(sample.boxes)),
                               visible=jnp.where(valid, sample.visible, 0.0))
    return sample

  def __call__(self, rng: jax.Array, images: jax.Array) -> jax.Array:
    """Images [N, H, W, C] -> transformed images; use `apply` for pipelines that mix labels."""
    if self.mixes_labels:
      raise ConfigError(f"{self.spec!r} mixes labels (mixup/cutmix): use it in input.augment of a classification "
                        "task, or call pipeline.apply(rng, images, targets=...)")
    return self.apply(rng, images).images


def box_areas(boxes: jax.Array) -> jax.Array:
  """[...] areas of xyxy boxes [..., 4] (0 for inverted boxes)."""
  return jnp.clip(boxes[..., 2] - boxes[..., 0], 0) * jnp.clip(boxes[..., 3] - boxes[..., 1], 0)


def build(spec: str, min_visible: float = 0.0) -> Pipeline:
  """Builds the pipeline described by `spec` (ops separated by "|"); "" is the identity.

  Args:
    spec: the ops, e.g. "flip_lr|zoom(scale=(0.8, 1.2))".
    min_visible: boxes keeping less than this fraction of their area inside the image become invalid (zeros);
      0 keeps every box that is still partly inside.

  Raises:
    ConfigError: an unknown op name or arguments the op does not take.
  """
  ops = []
  for name, kwargs in parse_pipeline(spec):
    if name not in _FACTORIES:
      raise ConfigError(f"unknown image op {name!r} in {spec!r}; known ops: {', '.join(names())}")
    try:
      ops.append((name, _FACTORIES[name](**kwargs)))
    except TypeError as e:
      raise ConfigError(f"image op {name!r} does not take {kwargs}: {e}") from None
  return Pipeline(spec, ops, min_visible)
