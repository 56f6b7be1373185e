"""Look at a dataset: a PNG grid of its first examples with boxes, class names, masks and keypoints drawn, and a
text summary (the feature table and counts). `python -m vision_jax.data show NAME` runs `show`.

Inputs that are not images are drawn too: a [T, C] signal as lines, a [D, H, W, C] volume as its middle slice.
A second image (`image2`, paired views) is drawn to the right of the first.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from vision_jax.data import datasets
from vision_jax.data.features import DatasetSpec, Feature, typed_features
from vision_jax.errors import DataError

MAX_COUNTED = 20000  # examples read for the counts (the first ones of larger splits)
_CHUNK = 512
BOX_SIZE_EDGES = (0, 8, 16, 24, 32, 48, 64, 96, 128, 256, np.inf)  # sqrt(box area), pixels


def feature_table(spec: DatasetSpec) -> str:
  """The features of a spec as aligned text rows: key, kind, dtype, shape, classes or keypoint names."""
  rows = [("key", "kind", "dtype", "shape", "classes")]
  for key, feature in typed_features(spec).items():
    rows.append((key, feature.kind, feature.dtype, str(tuple(feature.shape)), _classes_text(feature)))
  widths = [max(len(row[i]) for row in rows) for i in range(4)]
  return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


def _classes_text(feature: Feature) -> str:
  if feature.keypoint_names:
    return f"keypoints {', '.join(feature.keypoint_names)}; flip pairs {list(feature.flip_pairs)}"
  if not feature.num_classes:
    return ""
  names = ", ".join(feature.class_names[:12]) + (", ..." if len(feature.class_names) > 12 else "")
  return f"{feature.num_classes} classes" + (f": {names}" if names else "")


def _records(source: Sequence[Any], indices: Sequence[int]) -> list[dict[str, Any]]:
  getitems = getattr(source, "__getitems__", None)
  return getitems(list(indices)) if getitems else [source[int(i)] for i in indices]


def object_statistics(boxes: np.ndarray, num_objects: np.ndarray) -> dict[str, np.ndarray]:
  """Objects per example and box sizes.

  Args:
    boxes: [N, M, 4] padded xyxy boxes.
    num_objects: [N] valid rows.

  Returns:
    {"objects_per_image": int [M + 1] examples with 0..M objects, "box_size_counts": int [len(edges) - 1] boxes
    per sqrt(area) bin of `BOX_SIZE_EDGES`}.
  """
  boxes, num_objects = np.asarray(boxes, np.float64), np.asarray(num_objects, np.int64)
  valid = np.arange(boxes.shape[1]) < num_objects[:, None]
  sizes = np.sqrt(np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None))
  return {"objects_per_image": np.bincount(num_objects, minlength=boxes.shape[1] + 1),
          "box_size_counts": np.histogram(sizes[valid], BOX_SIZE_EDGES)[0]}


def counts(source: Sequence[Any], spec: DatasetSpec) -> str:
  """Text lines: examples, label counts, objects per image and the box size histogram (for the first
  `MAX_COUNTED` examples)."""
  features = typed_features(spec)
  total = len(source)
  counted = min(total, MAX_COUNTED)
  lines = [f"examples: {total}" + (f" (counts below over the first {counted})" if counted < total else "")]
  keys = [k for k in (spec.label_key, "boxes", "num_objects") if k and k in features]
  if not keys:
    return "\n".join(lines)
  read: dict[str, list[np.ndarray]] = {k: [] for k in keys}
  for start in range(0, counted, _CHUNK):
    records = _records(source, range(start, min(start + _CHUNK, counted)))
    for key in keys:
      read[key].append(np.stack([np.asarray(r[key]) for r in records]))
  arrays = {k: np.concatenate(v) for k, v in read.items()}
  if spec.label_key in arrays:
    names = typed_features(spec)[spec.label_key].class_names
    per_class = np.bincount(arrays[spec.label_key].astype(np.int64), minlength=spec.num_classes)
    lines.append("examples per class: " + ", ".join(
        f"{names[c] if c < len(names) else c}={n}" for c, n in enumerate(per_class)))
  if "boxes" in arrays:
    num_objects = arrays.get("num_objects", np.full(len(arrays["boxes"]), arrays["boxes"].shape[1]))
    stats = object_statistics(arrays["boxes"], num_objects)
    lines.append(f"objects: {int(np.sum(num_objects))}, per image: " +
                 ", ".join(f"{k}:{n}" for k, n in enumerate(stats["objects_per_image"]) if n))
    bins = [f"[{lo:g},{hi:g})={n}" for lo, hi, n in zip(BOX_SIZE_EDGES[:-1], BOX_SIZE_EDGES[1:],
                                                       stats["box_size_counts"]) if n]
    lines.append("box size sqrt(area) px: " + ", ".join(bins))
  return "\n".join(lines)


def _as_picture(array: np.ndarray, rank: int) -> np.ndarray:
  """An image [H, W, C] (a volume's middle slice) or a [T, C] signal, unchanged otherwise."""
  array = np.asarray(array)
  if array.ndim == rank - 1 and rank in (3, 4):  # stored without the channel axis
    array = array[..., None]
  return array[array.shape[0] // 2] if array.ndim == 4 else array


def _side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
  """Two [H, W, C] images next to each other, the smaller one enlarged by an integer factor (nearest) or padded
  to the same height, with a 2-pixel grey gap."""
  if left.shape[-1] != right.shape[-1] or left.dtype != right.dtype:
    return left
  height = max(left.shape[0], right.shape[0])

  def fit(image):
    factor = height // image.shape[0]
    if factor > 1 and height % image.shape[0] == 0:
      image = image.repeat(factor, 0).repeat(factor, 1)
    return np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0)))

  gap = np.full((height, 2, left.shape[-1]), 128 if left.dtype == np.uint8 else 0.5, left.dtype)
  return np.concatenate([fit(left), gap, fit(right)], 1)


def drawable(record: dict[str, Any], spec: DatasetSpec) -> dict[str, Any]:
  """The keyword arguments of `plots.annotations.draw_annotations` for one example of a dataset."""
  features = typed_features(spec)
  image = _as_picture(record[spec.image_key], len(spec.image_shape))
  second = [k for k, f in features.items() if f.kind == "image" and k != spec.image_key]
  if second and image.ndim == 3:
    image = _side_by_side(image, _as_picture(record[second[0]], len(features[second[0]].shape)))
  out: dict[str, Any] = {"image": image}
  for key in ("boxes", "box_labels", "num_objects", "instance_masks", "keypoints"):
    if key in record and key in features:
      out[key] = np.asarray(record[key])
  masks = spec.keys_of_kind("mask")
  if masks:
    out["semantic_mask"] = np.asarray(record[masks[0]])
  title = []
  if spec.label_key:
    label = int(record[spec.label_key])
    names = spec.class_names
    title.append(names[label] if 0 <= label < len(names) else str(label))
  if second:
    title.append(f"{spec.image_key} | {second[0]}")
  out["title"] = " ".join(title)
  return out


def show(name: str, split: str = "train", n: int = 16, out: str = "grid.png", data_dir: str | None = None) -> str:
  """Draws the first `n` examples of a dataset split to a PNG grid and summarises the split.

  Args:
    name: a dataset `datasets.load` knows.
    split: split name.
    n: examples drawn.
    out: PNG path.
    data_dir: TFDS data directory (for TFDS datasets).

  Returns:
    The summary text: dataset, split, the feature table, counts and where the grid went.

  Raises:
    DataError: an unknown dataset or split, or n < 1.
  """
  from vision_jax.plots import annotations  # pylint: disable=import-outside-toplevel  # matplotlib is slow to import
  if n < 1:
    raise DataError(f"--n={n}: draw at least one example (e.g. --n=16)")
  source, spec = datasets.load(name, split, data_dir)
  features = typed_features(spec)
  shown = min(n, len(source))
  examples = [drawable(record, spec) for record in _records(source, range(shown))]
  boxes = features.get("box_labels")
  keypoints = spec.keys_of_kind("keypoints")
  annotations.plot_annotated_grid(examples, out, cols=min(8, max(4, int(np.ceil(np.sqrt(shown))))),
                                  class_names=boxes.class_names if boxes else (),
                                  keypoint_names=features[keypoints[0]].keypoint_names if keypoints else ())
  return "\n".join([f"dataset {name}, split {split}", feature_table(spec), counts(source, spec),
                    f"wrote {out} ({shown} examples)"])
