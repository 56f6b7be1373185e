"""Selective-search proposals per image, computed once on the host and cached as .npz files.

One file per image: `<cache_dir>/<dataset>/<split>/<mode>/<index>.npz` holding `boxes` float32 [n, 4] (xyxy
pixels, best ranked first, all n proposals of `selective_search(image, mode, seed=index)`). Files are written
atomically (a temporary name, then a rename) and read with `allow_pickle=False`; a model takes a fixed count P
of them, padded with a validity mask (`pad_proposals`).

`ProposalTable` serves the proposals of whole batches of images inside a jitted step (through a host callback):
batches carry images, not dataset indices, so it finds each image's (split, index) by a digest of its pixels,
reads (or computes and writes) that image's file, and computes the proposals of images that belong to neither
split (files given to --mode=predict) on the spot.

    python -m vision_jax.data.proposal_cache --dataset=digit_scenes --split=test --cache_dir=DIR [--mode=fast]
        [--num_images=N] [--processes=2]

fills the cache of a split's first N images (all by default) with a pool of at most 2 processes and prints the
seconds it took as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import threading
import time
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from vision_jax.errors import DataError, UserError
from vision_jax.ops import selective_search

MAX_PROCESSES = 2  # the machines this runs on have 2 cores, shared


def cache_path(cache_dir: str, dataset: str, split: str, mode: str, index: int) -> str:
  """The file of one image's proposals (dataset names such as "voc/2007" become "voc_2007")."""
  safe = lambda text: str(text).replace("/", "_").replace(":", "_")
  return os.path.join(cache_dir, safe(dataset), safe(split), mode, f"{int(index):06d}.npz")


def compute_proposals(image: np.ndarray, mode: str, seed: int) -> np.ndarray:
  """float32 [n, 4] selective-search proposals of one image (`selective_search.selective_search`)."""
  return selective_search.selective_search(np.asarray(image), mode=mode, seed=int(seed)).reshape(-1, 4)


def save_proposals(path: str, boxes: np.ndarray) -> None:
  """Writes `boxes` [n, 4] to `path` atomically (readers never see half a file)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp.npz"
  np.savez(temporary, boxes=np.asarray(boxes, np.float32).reshape(-1, 4))
  os.replace(temporary, path)


def load_proposals(path: str) -> np.ndarray:
  """float32 [n, 4] proposals of a cache file."""
  try:
    with np.load(path, allow_pickle=False) as data:
      return np.asarray(data["boxes"], np.float32).reshape(-1, 4)
  except (OSError, KeyError, ValueError) as e:
    raise DataError(f"proposal cache file {path} is unreadable ({e}); delete it to have it computed again") from None


def pad_proposals(boxes: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
  """The first `count` proposals padded to exactly `count` rows.

  Args:
    boxes: [n, 4] proposals, best first.
    count: P.

  Returns:
    (float32 [P, 4] boxes, zeros in padding rows; bool [P] validity).
  """
  boxes = np.asarray(boxes, np.float32).reshape(-1, 4)[:count]
  padded = np.zeros((count, 4), np.float32)
  padded[:len(boxes)] = boxes
  return padded, np.arange(count) < len(boxes)


def image_digest(image: np.ndarray) -> bytes:
  """A 16-byte digest of an image's pixels and dtype (the same for [H, W] and [H, W, 1])."""
  image = np.ascontiguousarray(image)
  return hashlib.blake2b(image.dtype.str.encode() + image.tobytes(), digest_size=16).digest()


def as_uint8(image: np.ndarray) -> np.ndarray:
  """A uint8 image as it is; a float image in [0, 1] (`to_float`) times 255; any other image rescaled from its
  [min, max] to 0..255 (0 where constant)."""
  image = np.asarray(image)
  if image.dtype == np.uint8:
    return image
  image = image.astype(np.float64)
  low, high = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
  if low < 0.0 or high > 1.0:
    image = (image - low) / (high - low) if high > low else np.zeros_like(image)
  return np.round(image * 255.0).astype(np.uint8)


def _compute_job(job: tuple[np.ndarray, str, int]) -> np.ndarray:
  return compute_proposals(*job)


def build(images: Iterable[tuple[int, np.ndarray]], cache_dir: str, dataset: str, split: str, mode: str = "fast",
          processes: int = MAX_PROCESSES) -> dict[str, Any]:
  """Computes and writes the proposals of the given images that are not cached yet.

  Args:
    images: (dataset index, [H, W, C] image) pairs.
    cache_dir: the cache's root directory.
    dataset: dataset name (part of the key).
    split: split name (part of the key).
    mode: selective-search mode (part of the key).
    processes: worker processes, at most `MAX_PROCESSES` (1: in this process).

  Returns:
    {"computed": images computed, "cached": images already there, "seconds": wall time, "processes": the
    processes used (`processes` capped at `MAX_PROCESSES` and at the images to compute, at least 1)}.
  """
  if mode not in selective_search.MODES:
    raise DataError(f"unknown selective search mode {mode!r}: use one of {', '.join(selective_search.MODES)}")
  start = time.perf_counter()
  todo, cached = [], 0
  for index, image in images:
    path = cache_path(cache_dir, dataset, split, mode, index)
    if os.path.exists(path):
      cached += 1
    else:
      todo.append((path, (np.asarray(image), mode, int(index))))
  processes = max(1, min(int(processes), MAX_PROCESSES, len(todo)))
  jobs = [job for _, job in todo]
  if processes == 1:
    results: Iterable[np.ndarray] = map(_compute_job, jobs)
    pool = None
  else:  # spawn: the parent may run JAX's threads, which fork would copy in an unknown state
    pool = multiprocessing.get_context("spawn").Pool(processes)
    results = pool.imap(_compute_job, jobs, chunksize=8)
  try:
    for (path, _), boxes in zip(todo, results):
      save_proposals(path, boxes)
  finally:
    if pool is not None:
      pool.close()
      pool.join()
  return {"computed": len(todo), "cached": cached, "seconds": time.perf_counter() - start, "processes": processes}


class ProposalTable:
  """Proposals of images by their pixels, for the splits a run reads (see the module docstring).

  Args:
    cache_dir: the cache's root directory.
    dataset: dataset name.
    mode: selective-search mode.
    count: P, proposals per image after padding.
    splits: split name -> (source, number of its first examples in use; 0 for all). Images of a split beyond
      that number are known but not in use (`lookup` marks them so).
    image_key: the image's key in the sources' records.
    prebuild_processes: > 0: the first time an image of a split is looked up, the cache of every example in
      use of that split is filled first (`build` with this many processes; reports in `build_reports`);
      0: each image is computed when first looked up.
  """

  def __init__(self, cache_dir: str, dataset: str, mode: str, count: int,
               splits: dict[str, tuple[Sequence[Any], int]], image_key: str = "image", prebuild_processes: int = 0):
    if count < 1:
      raise DataError(f"proposals per image must be at least 1, got {count}")
    self.cache_dir, self.dataset, self.mode, self.count = cache_dir, dataset, mode, int(count)
    self.splits, self.image_key, self.prebuild_processes = splits, image_key, int(prebuild_processes)
    self.build_reports: dict[str, dict[str, Any]] = {}
    self._where: dict[bytes, tuple[str, int]] | None = None
    self._memo: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    self._lock = threading.Lock()

  def in_use(self, split: str) -> int:
    """How many first examples of `split` are in use."""
    source, limit = self.splits[split]
    return len(source) if limit <= 0 else min(int(limit), len(source))

  def _index(self) -> dict[bytes, tuple[str, int]]:
    """digest -> (split, index) of every example of the splits (built on first use)."""
    if self._where is None:
      where = {}
      for split, (source, _) in self.splits.items():
        for index in range(len(source)):
          where.setdefault(image_digest(np.asarray(source[index][self.image_key])), (split, index))
      self._where = where
    return self._where

  def prebuild(self, split: str, processes: int = MAX_PROCESSES) -> dict[str, Any]:
    """Fills the cache for the examples in use of `split`; `build`'s report (also kept in `build_reports`)."""
    source, _ = self.splits[split]
    pairs = ((i, np.asarray(source[i][self.image_key])) for i in range(self.in_use(split)))
    self.build_reports[split] = build(pairs, self.cache_dir, self.dataset, split, self.mode, processes)
    return self.build_reports[split]

  def _proposals(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(padded boxes [P, 4], validity [P], in use) of one image, memoised by digest."""
    digest = image_digest(image)
    with self._lock:
      found = self._memo.get(digest)
    if found is not None:
      return found
    place = self._index().get(digest)
    in_use = place is None or place[1] < self.in_use(place[0])
    if place is None:  # an image of neither split (a file to predict on, possibly a float model input)
      boxes = compute_proposals(as_uint8(image), self.mode, 0)
    elif not in_use:  # never computed: nothing of it is used
      boxes = np.zeros((0, 4), np.float32)
    else:
      split, index = place
      if self.prebuild_processes > 0 and split not in self.build_reports:
        self.prebuild(split, self.prebuild_processes)
      path = cache_path(self.cache_dir, self.dataset, split, self.mode, index)
      if os.path.exists(path):
        boxes = load_proposals(path)
      else:
        boxes = compute_proposals(image, self.mode, index)
        save_proposals(path, boxes)
    found = (*pad_proposals(boxes, self.count), in_use)
    with self._lock:
      self._memo[digest] = found
    return found

  def lookup(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Proposals of a batch of images.

    Args:
      images: [N, H, W, C] images as the dataset stores them.

    Returns:
      (float32 [N, P, 4] boxes, bool [N, P] validity, bool [N] in use: False for an example of a split beyond
      the number in use, which has no valid proposals).
    """
    found = [self._proposals(image) for image in np.asarray(images)]
    if not found:
      return np.zeros((0, self.count, 4), np.float32), np.zeros((0, self.count), bool), np.zeros((0,), bool)
    return (np.stack([f[0] for f in found]), np.stack([f[1] for f in found]),
            np.asarray([f[2] for f in found], bool))


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Command-line entry; returns the exit status."""
  parser = argparse.ArgumentParser(prog="python -m vision_jax.data.proposal_cache",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("--dataset", default="digit_scenes")
  parser.add_argument("--split", default="test")
  parser.add_argument("--cache_dir", required=True)
  parser.add_argument("--mode", default="fast", choices=sorted(selective_search.MODES))
  parser.add_argument("--num_images", type=int, default=0, help="first N images of the split; 0: all")
  parser.add_argument("--processes", type=int, default=MAX_PROCESSES)
  args = parser.parse_args(argv)
  try:
    from vision_jax.data import datasets  # pylint: disable=import-outside-toplevel  # slow; only here
    source, spec = datasets.load(args.dataset, args.split)
    count = len(source) if args.num_images <= 0 else min(args.num_images, len(source))
    pairs = ((i, np.asarray(source[i][spec.image_key])) for i in range(count))
    report = build(pairs, args.cache_dir, args.dataset, args.split, args.mode, args.processes)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  report.update(dataset=args.dataset, split=args.split, mode=args.mode, num_images=count)
  print(json.dumps(report))
  return 0


if __name__ == "__main__":
  sys.exit(main())
