"""Scenes of several embedded-MNIST digits on one canvas, for detection and segmentation (`digit_scenes`).

A scene is a black canvas (default 96x96x1 uint8) holding 1..6 digits. Each digit is cropped to the nonzero
pixels of its 28x28 source image, resized (PIL bilinear) so that its longer side is 16..48 px (aspect kept) and
pasted at a random position fully inside the canvas. Digits are drawn in order and combined with max, so a
later digit lies over earlier ones. A digit's position is the first of `CANDIDATES` random tries whose overlap
with every earlier digit's patch (intersection over the smaller patch) is at most `max_overlap`, else the
least overlapping try: digits overlap sometimes, and a digit is rarely hidden.

Conventions:
  * ink: a pixel of a resized digit with value >= `INK_THRESHOLD` (128: at least half covered).
  * boxes: tight around the digit's own ink after resizing, visible or covered by a later digit (amodal):
    x1, y1 = first ink column, row; x2, y2 = last ink column, row + 1 (pixel (r, c) covers [c, c+1) x [r, r+1)).
  * instance_masks: the visible ink of each digit. The top (later) digit owns every pixel of its own ink, so
    the masks are disjoint and a covered digit's mask lacks the covered part (its box does not shrink).
  * semantic_mask: 11 classes, 0 background and d + 1 for digit d, the owner of each pixel (top digit wins).
  * source_index: index in the vendored 10k digits of each object's source digit (-1 in padding rows).

Train scenes use only train digits (indices < `embedded_mnist.NUM_TRAIN`), test scenes only test digits.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from vision_jax.data import embedded_mnist
from vision_jax.data.features import Feature, object_features, pad_objects
from vision_jax.data.sources import ArraySource

INK_THRESHOLD = 128
CANDIDATES = 12
CLASS_NAMES = tuple(str(d) for d in range(10))
MASK_CLASS_NAMES = ("background",) + CLASS_NAMES
SPLITS = {"train": (8000, 0), "test": (2000, 1)}  # split -> (scenes, seed)


@dataclasses.dataclass(frozen=True)
class SceneConfig:
  """How scenes look.

  Attributes:
    canvas_size: S, the side of the square canvas in pixels.
    min_digits: fewest digits per scene.
    max_digits: most digits per scene (at most `max_objects`).
    min_size: shortest longer side of a resized digit, pixels.
    max_size: longest longer side of a resized digit, pixels (at most `canvas_size`).
    max_overlap: largest accepted intersection over the smaller patch between two digits' patches.
    max_objects: M, rows of the padded object features.
  """

  canvas_size: int = 96
  min_digits: int = 1
  max_digits: int = 6
  min_size: int = 16
  max_size: int = 48
  max_overlap: float = 0.3
  max_objects: int = 6

  def __post_init__(self):
    if not 1 <= self.min_digits <= self.max_digits <= self.max_objects:
      raise ValueError(f"need 1 <= min_digits <= max_digits <= max_objects, got {self}")
    if not 1 <= self.min_size <= self.max_size <= self.canvas_size:
      raise ValueError(f"need 1 <= min_size <= max_size <= canvas_size, got {self}")


def tight_boxes(masks: np.ndarray) -> np.ndarray:
  """[N, 4] int64 boxes (x1, y1, x2, y2) around the True pixels of bool [N, H, W] masks; x2, y2 are the last
  column, row + 1. An empty mask gives (0, 0, W, H)."""
  rows, cols = masks.any(2), masks.any(1)
  h, w = masks.shape[1:]
  return np.stack([cols.argmax(1), rows.argmax(1), w - cols[:, ::-1].argmax(1), h - rows[:, ::-1].argmax(1)], 1)


def _crops(digits: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
  """Each digit cropped to its nonzero pixels, and the crops' [K, 2] (height, width)."""
  boxes = tight_boxes(digits > 0)
  crops = [d[y1:y2, x1:x2] for d, (x1, y1, x2, y2) in zip(digits, boxes)]
  return crops, np.stack([boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]], 1)


def _candidate_patches(rng: np.random.Generator, crop_hw: np.ndarray, config: SceneConfig) -> np.ndarray:
  """[T, CANDIDATES, 4] int patch rectangles (x1, y1, x2, y2) for T digits of sizes crop_hw [T, 2]."""
  count = len(crop_hw)
  size = rng.integers(config.min_size, config.max_size + 1, (count, CANDIDATES))
  longer = crop_hw.max(1, keepdims=True)
  h = np.maximum(1, np.rint(size * crop_hw[:, :1] / longer)).astype(np.int64)
  w = np.maximum(1, np.rint(size * crop_hw[:, 1:] / longer)).astype(np.int64)
  s = config.canvas_size
  x1 = (rng.random((count, CANDIDATES)) * (s - w + 1)).astype(np.int64)
  y1 = (rng.random((count, CANDIDATES)) * (s - h + 1)).astype(np.int64)
  return np.stack([x1, y1, x1 + w, y1 + h], -1)


def _pick(candidates: np.ndarray, placed: list[np.ndarray], max_overlap: float) -> np.ndarray:
  """The first candidate [4] overlapping no placed patch by more than max_overlap, else the least overlapping."""
  if not placed:
    return candidates[0]
  others = np.stack(placed)
  wh = np.minimum(candidates[:, None, 2:], others[None, :, 2:]) - np.maximum(candidates[:, None, :2],
                                                                            others[None, :, :2])
  inter = np.clip(wh, 0, None).prod(-1)
  area_c = (candidates[:, 2:] - candidates[:, :2]).prod(-1)
  area_o = (others[:, 2:] - others[:, :2]).prod(-1)
  overlap = (inter / np.minimum(area_c[:, None], area_o[None])).max(1)
  ok = overlap <= max_overlap
  return candidates[ok.argmax() if ok.any() else overlap.argmin()]


def make_scenes(digits: np.ndarray, labels: np.ndarray, num_scenes: int, seed: int,
                source_indices: np.ndarray | None = None, config: SceneConfig = SceneConfig()) -> dict[str, np.ndarray]:
  """Makes `num_scenes` scenes from a pool of digits, deterministic in `seed`.

  Args:
    digits: uint8 [K, 28, 28] source digits (any square or rectangular size works).
    labels: [K] their classes 0..9.
    num_scenes: N.
    seed: NumPy generator seed.
    source_indices: [K] index of each digit to report in `source_index` (default 0..K-1).
    config: the scene layout.

  Returns:
    With S = canvas_size and M = max_objects: image uint8 [N, S, S, 1]; boxes float32 [N, M, 4]; box_labels int32
    [N, M]; num_objects int32 [N]; instance_ids uint8 [N, S, S] (k + 1 where object k owns the pixel, 0
    elsewhere: the instance masks are `instance_ids == k + 1`); semantic_mask uint8 [N, S, S]; source_index
    int32 [N, M]; patch_boxes int32 [N, M, 4] (where each resized digit was pasted); ink_area int32 [N, M] (ink
    pixels of each digit, visible or not).
  """
  rng = np.random.default_rng(seed)
  source_indices = np.arange(len(digits)) if source_indices is None else np.asarray(source_indices)
  crops, crop_hw = _crops(np.asarray(digits))
  counts = rng.integers(config.min_digits, config.max_digits + 1, num_scenes)
  picks = rng.integers(0, len(digits), counts.sum())
  candidates = _candidate_patches(rng, crop_hw[picks], config)
  s, m = config.canvas_size, config.max_objects
  image = np.zeros((num_scenes, s, s, 1), np.uint8)
  instance_ids = np.zeros((num_scenes, s, s), np.uint8)
  out = {key: np.zeros((num_scenes, m) + shape, np.int32) for key, shape in
         (("source_index", ()), ("patch_boxes", (4,)), ("ink_area", ()))}
  out["source_index"][:] = -1
  boxes, box_labels, num_objects = [], [], np.zeros(num_scenes, np.int32)
  first = np.concatenate([[0], np.cumsum(counts)])
  for n in range(num_scenes):
    canvas, ids, placed, scene_boxes = image[n, :, :, 0], instance_ids[n], [], []
    for k, t in enumerate(range(first[n], first[n + 1])):
      x1, y1, x2, y2 = patch = _pick(candidates[t], placed, config.max_overlap)
      placed.append(patch)
      pixels = np.asarray(Image.fromarray(crops[picks[t]]).resize((x2 - x1, y2 - y1), Image.BILINEAR))
      ink = pixels >= INK_THRESHOLD
      if not ink.any():  # a faint digit shrunk a lot: its brightest pixels are its ink
        ink = pixels == pixels.max()
      np.maximum(canvas[y1:y2, x1:x2], pixels, out=canvas[y1:y2, x1:x2])
      ids[y1:y2, x1:x2][ink] = k + 1
      rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
      scene_boxes.append((x1 + cols[0], y1 + rows[0], x1 + cols[-1] + 1, y1 + rows[-1] + 1))
      out["patch_boxes"][n, k] = patch
      out["ink_area"][n, k] = ink.sum()
    padded = pad_objects({"boxes": np.array(scene_boxes, np.float32), "box_labels": labels[picks[first[n]:first[n + 1]]]},
                         m)
    boxes.append(padded["boxes"])
    box_labels.append(padded["box_labels"])
    num_objects[n] = padded["num_objects"]
    out["source_index"][n, :counts[n]] = source_indices[picks[first[n]:first[n + 1]]]
  box_labels = np.stack(box_labels)
  owner_class = np.concatenate([np.zeros((num_scenes, 1), np.uint8), (box_labels + 1).astype(np.uint8)], 1)
  semantic_mask = np.take_along_axis(owner_class, instance_ids.reshape(num_scenes, -1), 1).reshape(instance_ids.shape)
  return {"image": image, "boxes": np.stack(boxes), "box_labels": box_labels, "num_objects": num_objects,
          "instance_ids": instance_ids, "semantic_mask": semantic_mask, **out}


def instance_masks(instance_ids: np.ndarray, max_objects: int) -> np.ndarray:
  """uint8 [..., M, H, W] 0/1 masks from id maps [..., H, W] (object k owns the pixels equal to k + 1)."""
  ids = np.asarray(instance_ids)[..., None, :, :]
  return (ids == np.arange(1, max_objects + 1).reshape(-1, 1, 1)).astype(np.uint8)


class SceneSource(ArraySource):
  """An `ArraySource` over scenes kept as one id map each (6x less memory than masks); reading an example
  turns its `instance_ids` [H, W] into `instance_masks` [M, H, W]."""

  def __init__(self, arrays: dict[str, np.ndarray], max_objects: int):
    super().__init__(arrays)
    self.max_objects = max_objects

  def _expand(self, record: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    record["instance_masks"] = instance_masks(record.pop("instance_ids"), self.max_objects)
    return record

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return self._expand(super().__getitem__(index))

  def take(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """The examples at `indices` as whole arrays, instance masks expanded."""
    return self._expand(super().take(indices))


def features(config: SceneConfig = SceneConfig()) -> dict[str, Feature]:
  """The typed features of `digit_scenes` examples."""
  s, m = config.canvas_size, config.max_objects
  return {"image": Feature("image", (s, s, 1), "uint8"),
          **object_features(m, 10, CLASS_NAMES, (s, s)),
          "semantic_mask": Feature("mask", (s, s), "uint8", 11, MASK_CLASS_NAMES),
          "source_index": Feature("value", (m,), "int32")}


def split_source(split: str, config: SceneConfig = SceneConfig()) -> tuple[SceneSource, dict[str, Feature]]:
  """A split of `digit_scenes` (train: 8,000 scenes of train digits, seed 0; test: 2,000 of test digits, seed 1).

  Returns:
    (source, features): `source[i]` holds the keys of `features(config)`.
  """
  images, labels = embedded_mnist.load_arrays()
  train = split == "train"
  pool = np.arange(embedded_mnist.NUM_TRAIN) if train else np.arange(embedded_mnist.NUM_TRAIN, len(images))
  num_scenes, seed = SPLITS[split]
  scenes = make_scenes(images[pool], labels[pool], num_scenes, seed, pool, config)
  keep = ("image", "boxes", "box_labels", "num_objects", "instance_ids", "semantic_mask", "source_index")
  return SceneSource({k: scenes[k] for k in keep}, config.max_objects), features(config)


def statistics(scenes: dict[str, np.ndarray]) -> dict[str, object]:
  """Objects per scene, box sizes and how much ink is covered, for scenes from `make_scenes`.

  Returns:
    `show.object_statistics` of the boxes ("objects_per_image", "box_size_counts" over `show.BOX_SIZE_EDGES`)
    and "occluded_ink_fraction": ink pixels covered by a later digit over all ink pixels.
  """
  from vision_jax.data import show  # pylint: disable=import-outside-toplevel  # show loads datasets, which load us
  max_objects = scenes["boxes"].shape[1]
  visible = np.bincount(scenes["instance_ids"].ravel(), minlength=max_objects + 1)[1:].sum()
  return {**show.object_statistics(scenes["boxes"], scenes["num_objects"]),
          "occluded_ink_fraction": 1.0 - visible / max(int(scenes["ink_area"].sum()), 1)}
