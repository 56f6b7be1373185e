"""The op registry, the `Sample` ops work on, and pipelines built from config strings.

An op is a pure function `op(rng, sample) -> sample` on a `Sample` (images, optional boxes, optional soft
targets) built by a factory registered under a name. `build("a|b(k=v)")` chains ops into a `Pipeline`; each op
gets `fold_in(rng, position)`, so a pipeline is reproducible from one key and jit-able.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import numpy as np

from vision_jax.op_spec import parse_pipeline
from vision_jax.errors import ConfigError, DataError


class Sample(NamedTuple):
  """A batch as ops see it (a pytree, so it passes through `jax.jit`).

  Attributes:
    images: [N, H, W, C] images.
    boxes: [N, M, 4] boxes (x1, y1, x2, y2) in pixels of the image they belong to, or None. Pixel (row r,
      column c) covers [c, c + 1) x [r, r + 1), so a box around pixels c0..c1 has x1 = c0, x2 = c1 + 1, as in
      `vision_jax.ops.boxes`. Geometric ops move boxes with the pixels; zero-area (padding) boxes stay zero-area.
    targets: [N, K] class probabilities (one-hot or smoothed labels), or None; mixing ops mix them.
  """

  images: jax.Array
  boxes: jax.Array | None = None
  targets: jax.Array | None = None


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


class Pipeline:
  """Ops chained by a config string; call it on images, or `apply` it to images with boxes and targets.

  Example:
    >>> pipeline = build("flip_lr|rotate(degrees=10)|mixup(alpha=0.2)")
    >>> out = pipeline.apply(jax.random.PRNGKey(0), images, targets=jax.nn.one_hot(labels, 10))
    >>> out.images, out.targets
  """

  def __init__(self, spec: str, ops: list[tuple[str, Op]]):
    self.spec = spec
    self._ops = ops
    self._run = jax.jit(self._run_ops)  # one compilation for eager (notebook) calls; inlined under an outer jit

  @property
  def mixes_labels(self) -> bool:
    """Whether some op combines examples, so that the pipeline needs and changes targets."""
    return any(name in _MIXES_LABELS for name, _ in self._ops)

  def apply(self, rng: jax.Array, images: jax.Array, boxes: jax.Array | None = None,
            targets: jax.Array | None = None) -> Sample:
    """Runs the ops on a batch.

    Args:
      rng: a PRNG key; op i uses `fold_in(rng, i)`.
      images: [N, H, W, C] images.
      boxes: optional [N, M, 4] xyxy pixel boxes, moved with the pixels by geometric ops.
      targets: optional [N, K] class probabilities, required by label-mixing ops.

    Returns:
      The transformed `Sample`.
    """
    sample = Sample(images, boxes, targets)
    _check_sample(sample)
    return self._run(rng, sample) if self._ops else sample

  def _run_ops(self, rng: jax.Array, sample: Sample) -> Sample:
    for i, (_, op) in enumerate(self._ops):
      sample = op(jax.random.fold_in(rng, i), sample)
    return sample

  def __call__(self, rng: jax.Array, images: jax.Array) -> jax.Array:
    """Images [N, H, W, C] -> transformed images; use `apply` for pipelines that mix labels."""
    if self.mixes_labels:
      raise ConfigError(f"{self.spec!r} mixes labels (mixup/cutmix): use it in input.augment of a classification "
                        "task, or call pipeline.apply(rng, images, targets=...)")
    return self.apply(rng, images).images


def build(spec: str) -> Pipeline:
  """Builds the pipeline described by `spec` (ops separated by "|"); "" is the identity.

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
  return Pipeline(spec, ops)
