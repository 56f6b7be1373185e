"""Recall of class-agnostic box proposals against ground-truth boxes, as a function of the number of proposals.

A ground-truth box is recalled by the first n proposals of its image when one of them overlaps it with
IoU >= t (`vision_jax.ops.boxes.box_iou`); recall(n, t) is the fraction of all ground-truth boxes of the images
recalled. The average best overlap (ABO) is the mean over ground-truth boxes of the best IoU of any proposal.

    python -m vision_jax.evaluation.proposal_recall --dataset=digit_scenes --split=test --num_images=200 --out=DIR

runs selective search (`vision_jax.ops.selective_search`, `--mode=fast` by default) on the first images of the
split and writes DIR/recall_vs_proposals.png and DIR/proposal_recall.json (recall at 100/500/2000 proposals
for IoU 0.5 and 0.7, proposals per image, ABO, seconds per image). A mistake is one `error:` line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from vision_jax.errors import DataError, UserError  # pylint: disable=wrong-import-position
from vision_jax.ops import boxes as box_ops  # pylint: disable=wrong-import-position
from vision_jax.ops import selective_search  # pylint: disable=wrong-import-position

COUNTS = (100, 500, 2000)
THRESHOLDS = (0.5, 0.7)


def best_overlaps(proposals: np.ndarray, gt_boxes: np.ndarray, max_proposals: int) -> np.ndarray:
  """Best IoU of each ground-truth box among the first n proposals, for n = 1..max_proposals.

  Args:
    proposals: [P, 4] xyxy proposals, best ranked first (only the first `max_proposals` count).
    gt_boxes: [G, 4] xyxy ground-truth boxes of positive area.
    max_proposals: Nmax.

  Returns:
    float32 [Nmax, G]: row n - 1 holds the best IoUs with the first n proposals (rows past P repeat row P - 1;
    0 where there is no proposal yet).
  """
  proposals = np.asarray(proposals, np.float32).reshape(-1, 4)[:max_proposals]
  padded = np.zeros((max_proposals, 4), np.float32)  # empty boxes at the origin: IoU 0 with any real box
  padded[:len(proposals)] = proposals
  iou = np.nan_to_num(np.asarray(box_ops.box_iou(padded, np.asarray(gt_boxes, np.float32).reshape(-1, 4))))
  return np.maximum.accumulate(iou, axis=0)


def recall_curves(overlaps: Sequence[np.ndarray], thresholds: Sequence[float] = THRESHOLDS) -> np.ndarray:
  """Recall against the number of proposals.

  Args:
    overlaps: per image, `best_overlaps` [Nmax, G_i] (the same Nmax for all).
    thresholds: T IoU thresholds.

  Returns:
    float64 [T, Nmax]: [t, n - 1] is the fraction of all ground-truth boxes whose best IoU with their image's
    first n proposals is >= thresholds[t].
  """
  best = np.concatenate(list(overlaps), axis=1)
  if best.shape[1] == 0:
    raise DataError("proposal recall needs at least one ground-truth box; pick images that have objects")
  return np.stack([(best >= t).mean(1) for t in thresholds])


def plot_recall(curves: np.ndarray, thresholds: Sequence[float], path: str, title: str,
                mean_proposals: float | None = None) -> None:
  """Draws recall [T, Nmax] against the number of proposals (log axis), one line per IoU threshold, to a PNG."""
  counts = np.arange(1, curves.shape[1] + 1)
  fig, ax = plt.subplots(figsize=(6, 4))
  for curve, threshold in zip(curves, thresholds):
    ax.plot(counts, curve, label=f"IoU >= {threshold:g}")
  if mean_proposals is not None:
    ax.axvline(mean_proposals, color="gray", linestyle=":", label=f"mean proposals per image ({mean_proposals:.0f})")
  ax.set_xscale("log")
  ax.set_xlim(1, curves.shape[1])
  ax.set_ylim(0, 1.02)
  ax.set_xlabel("number of proposals per image")
  ax.set_ylabel("recall")
  ax.set_title(title)
  ax.grid(alpha=0.3, which="both")
  ax.legend(loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def evaluate(images: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray], mode: str = "fast", seed: int = 0,
             counts: Sequence[int] = COUNTS, thresholds: Sequence[float] = THRESHOLDS) -> tuple[dict, np.ndarray]:
  """Runs selective search on each image and measures its recall.

  Args:
    images: per image, [H, W, C] uint8.
    gt_boxes: per image, [G_i, 4] xyxy ground-truth boxes.
    mode: selective search mode ('single', 'fast', 'quality').
    seed: seed of the proposal ranking (image i uses seed + i).
    counts: numbers of proposals to report recall at.
    thresholds: IoU thresholds.

  Returns:
    (summary, curves): summary is a JSON-ready dict with "recall" {"iou_<t>": {"<n>": recall}}, proposals per
    image, ABO and seconds per image; curves is `recall_curves` [T, max(counts)].
  """
  max_count = max(counts)
  overlaps, proposal_counts, seconds = [], [], 0.0
  for index, (image, gt) in enumerate(zip(images, gt_boxes)):
    start = time.perf_counter()
    proposals = selective_search.selective_search(image, mode=mode, seed=seed + index)
    seconds += time.perf_counter() - start
    proposal_counts.append(len(proposals))
    overlaps.append(best_overlaps(proposals, gt, max_count))
  curves = recall_curves(overlaps, thresholds)
  best = np.concatenate([o[-1] for o in overlaps])
  summary = {
      "mode": mode, "seed": seed, "num_images": len(overlaps), "num_gt_boxes": int(best.size),
      "recall": {f"iou_{t:g}": {str(n): float(curves[i, n - 1]) for n in counts} for i, t in enumerate(thresholds)},
      "proposals_per_image": {"mean": float(np.mean(proposal_counts)), "min": int(np.min(proposal_counts)),
                              "max": int(np.max(proposal_counts))},
      "average_best_overlap": float(best.mean()),
      "seconds_per_image": seconds / max(len(overlaps), 1),
  }
  return summary, curves


def load_split(dataset: str, split: str, num_images: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """The first `num_images` images of a detection dataset split and their ground-truth boxes [G_i, 4]."""
  if num_images < 1:
    raise DataError(f"--num_images must be at least 1, got {num_images}")
  from vision_jax.data import datasets  # pylint: disable=import-outside-toplevel  # loading TFDS is slow; only here
  source, spec = datasets.load(dataset, split)
  if "boxes" not in spec.extra_features:
    raise DataError(f"dataset {dataset} has no boxes: pick a detection dataset (digit_scenes, voc, coco)")
  images, gt_boxes = [], []
  for index in range(min(num_images, len(source))):
    example = source[index]
    images.append(np.asarray(example[spec.image_key]))
    gt_boxes.append(np.asarray(example["boxes"])[:int(example["num_objects"])])
  return images, gt_boxes


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Command-line entry; returns the exit status."""
  parser = argparse.ArgumentParser(prog="python -m vision_jax.evaluation.proposal_recall",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("--dataset", default="digit_scenes")
  parser.add_argument("--split", default="test")
  parser.add_argument("--num_images", type=int, default=200)
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--mode", default="fast", choices=sorted(selective_search.MODES))
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  try:
    images, gt_boxes = load_split(args.dataset, args.split, args.num_images)
    start = time.perf_counter()
    summary, curves = evaluate(images, gt_boxes, args.mode, args.seed)
    summary.update(dataset=args.dataset, split=args.split, wall_seconds=time.perf_counter() - start)
    os.makedirs(args.out, exist_ok=True)
    title = f"selective search ({args.mode}) on {args.dataset} {args.split}, {summary['num_images']} images"
    plot_recall(curves, THRESHOLDS, os.path.join(args.out, "recall_vs_proposals.png"), title,
                summary["proposals_per_image"]["mean"])
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  with open(os.path.join(args.out, "proposal_recall.json"), "w") as f:
    json.dump(summary, f, indent=2)
  print(json.dumps(summary, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
