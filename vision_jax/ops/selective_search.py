"""Selective search (Uijlings, van de Sande, Gevers & Smeulders, IJCV 2013): class-agnostic box proposals by
hierarchical grouping of a Felzenszwalb over-segmentation, on the host in NumPy.

One strategy = a colour space, a Felzenszwalb k (min_size = k, sigma 0.8 as in the paper) and a sum of
similarities among colour, texture, size and fill. Starting from the segmentation, the two adjacent regions with
the highest similarity are merged until one region is left; every region of the hierarchy (initial and merged)
gives its box. Similarities between regions i and j (image of `A` pixels):
  colour   sum(min(c_i, c_j)) over 25-bin histograms per channel, L1-normalised over all channels
  texture  the same over 10-bin histograms of Gaussian-derivative responses (sigma 1, 8 orientations) per channel
  size     1 - (|r_i| + |r_j|) / A
  fill     1 - (|BB_ij| - |r_i| - |r_j|) / A, BB_ij the box around both regions
A merged region's histograms are the size-weighted mean of its parts'. Ranking (the paper's): in a hierarchy of T
regions, the region created last (the whole image) has position 1 and the first initial region position T; each
region's value is its position times a uniform random number drawn per strategy, all strategies' boxes are sorted
by value (smallest first) and repeated boxes dropped (the first kept).

Modes (the paper's diversification):
  single    hsv; k 100; colour+texture+size+fill
  fast      hsv, lab; k 50, 100; colour+texture+size+fill, texture+size+fill (8 strategies)
  quality   hsv, lab, rgi, h, i; k 50, 100, 150, 300; those two plus fill and size alone (80 strategies)
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from vision_jax.errors import DataError
from vision_jax.ops import selective_search_features as features
from vision_jax.ops.felzenszwalb import felzenszwalb

SIMILARITIES = ("colour", "texture", "size", "fill")
SIGMA = 0.8  # Felzenszwalb smoothing used by the paper


@dataclasses.dataclass(frozen=True)
class Strategy:
  """One way to build a hierarchy.

  Attributes:
    colour_space: one of `selective_search_features.COLOUR_SPACES`.
    k: Felzenszwalb scale for 0..255 colours (the initial regions; min_size defaults to k).
    similarities: the similarities summed, a subset of `SIMILARITIES`.
  """

  colour_space: str = "hsv"
  k: float = 100.0
  similarities: tuple[str, ...] = SIMILARITIES

  def __post_init__(self):
    if self.colour_space not in features.COLOUR_SPACES:
      raise DataError(f"unknown colour space {self.colour_space!r}: use one of {', '.join(features.COLOUR_SPACES)}")
    unknown = set(self.similarities) - set(SIMILARITIES)
    if unknown or not self.similarities:
      raise DataError(f"similarities {self.similarities} must be a non-empty subset of {', '.join(SIMILARITIES)}")
    if self.k <= 0:
      raise DataError(f"selective search needs k > 0; got {self.k}")


def _grid(spaces, ks, combos) -> tuple[Strategy, ...]:
  return tuple(Strategy(s, float(k), c) for s, k, c in itertools.product(spaces, ks, combos))


_CTSF, _TSF = SIMILARITIES, ("texture", "size", "fill")
MODES = {
    "single": _grid(["hsv"], [100], [_CTSF]),
    "fast": _grid(["hsv", "lab"], [50, 100], [_CTSF, _TSF]),
    "quality": _grid(["hsv", "lab", "rgi", "h", "i"], [50, 100, 150, 300], [_CTSF, _TSF, ("fill",), ("size",)]),
}


def strategies(mode: str) -> tuple[Strategy, ...]:
  """The strategies of a mode: 'single', 'fast' or 'quality' (see the module docstring)."""
  if mode not in MODES:
    raise DataError(f"unknown selective search mode {mode!r}: use one of {', '.join(MODES)}")
  return MODES[mode]


def histogram_intersection(hist_a: np.ndarray, hist_b: np.ndarray) -> np.ndarray:
  """sum(min(a, b)) over the last axis of broadcastable histograms [..., D] -> [...] (the colour and texture
  similarities)."""
  return np.minimum(hist_a, hist_b).sum(-1)


def size_similarity(size_a: np.ndarray, size_b: np.ndarray, image_size: int) -> np.ndarray:
  """1 - (|a| + |b|) / image_size for pixel counts [...] -> [...]: small regions merge early."""
  return 1.0 - (size_a + size_b) / image_size


def fill_similarity(box_a: np.ndarray, box_b: np.ndarray, size_a: np.ndarray, size_b: np.ndarray,
                    image_size: int) -> np.ndarray:
  """1 - (|BB_ab| - |a| - |b|) / image_size for xyxy boxes [..., 4] and pixel counts [...] -> [...]: regions that
  fill each other's gaps merge early."""
  hull = np.maximum(box_a[..., 2:], box_b[..., 2:]) - np.minimum(box_a[..., :2], box_b[..., :2])
  return 1.0 - (hull[..., 0] * hull[..., 1] - size_a - size_b) / image_size


@dataclasses.dataclass
class Hierarchy:
  """The regions of one grouping, in creation order.

  Attributes:
    boxes: float64 [2R - 1, 4] xyxy boxes: the R initial regions, then one per merge (the last covers all).
    merges: int64 [R - 1, 2] the two region ids merged at each step (merge s creates region R + s).
    similarities: float64 [R - 1] the similarity of each merged pair when it was merged.
  """

  boxes: np.ndarray
  merges: np.ndarray
  similarities: np.ndarray


def hierarchical_grouping(labels: np.ndarray, similarities: tuple[str, ...] = SIMILARITIES,
                          colour_hist: np.ndarray | None = None, texture_hist: np.ndarray | None = None) -> Hierarchy:
  """Greedily merges the most similar adjacent pair of regions until one region is left.

  Args:
    labels: int [H, W] region ids 0..R-1 (every id present).
    similarities: the similarities summed, a subset of `SIMILARITIES`.
    colour_hist: float [R, Dc] L1-normalised colour histograms (needed when 'colour' is used).
    texture_hist: float [R, Dt] L1-normalised texture histograms (needed when 'texture' is used).

  Returns:
    The `Hierarchy`. Among pairs of equal similarity the one listed first merges: initial pairs in (i, j) order,
    then pairs with merged regions in the order those were created.
  """
  labels = np.asarray(labels)
  count = int(labels.max()) + 1
  image_size = labels.size
  total = 2 * count - 1
  sizes, boxes = features.region_boxes(labels, count)
  sizes = np.concatenate([sizes.astype(np.float64), np.zeros(count - 1)])
  boxes = np.concatenate([boxes, np.zeros((count - 1, 4))])
  hists = {}
  for name, hist in (("colour", colour_hist), ("texture", texture_hist)):
    if name in similarities:
      if hist is None or len(hist) != count:
        raise DataError(f"the {name} similarity needs {name}_hist with one row per region ({count})")
      hists[name] = np.concatenate([hist, np.zeros((count - 1, hist.shape[1]))])

  def similarity(i: int, others: np.ndarray) -> np.ndarray:
    value = np.zeros(len(others))
    for hist in hists.values():
      value += histogram_intersection(hist[i], hist[others])
    if "size" in similarities:
      value += size_similarity(sizes[i], sizes[others], image_size)
    if "fill" in similarities:
      value += fill_similarity(boxes[i], boxes[others], sizes[i], sizes[others], image_size)
    return value

  pairs = features.adjacent_pairs(labels)
  neighbours: dict[int, set[int]] = {i: set() for i in range(total)}
  scores: dict[tuple[int, int], float] = {}
  for i in range(count):
    others = pairs[pairs[:, 0] == i, 1]
    neighbours[i].update(others.tolist())
    for j in others.tolist():
      neighbours[j].add(i)
    scores.update(zip(((i, j) for j in others.tolist()), similarity(i, others).tolist()))
  merges, merged_scores = [], []
  for new in range(count, total):
    if not scores:
      raise DataError("hierarchical grouping found regions that touch no other region; pass a connected label map")
    i, j = best = max(scores, key=scores.get)
    merges.append(best)
    merged_scores.append(scores[best])
    sizes[new] = sizes[i] + sizes[j]
    boxes[new, :2] = np.minimum(boxes[i, :2], boxes[j, :2])
    boxes[new, 2:] = np.maximum(boxes[i, 2:], boxes[j, 2:])
    for hist in hists.values():
      hist[new] = (sizes[i] * hist[i] + sizes[j] * hist[j]) / sizes[new]
    around = (neighbours[i] | neighbours[j]) - {i, j}
    for old in (i, j):
      for other in neighbours.pop(old):
        scores.pop((min(old, other), max(old, other)), None)
        if other not in (i, j):
          neighbours[other].discard(old)
    others = np.array(sorted(around), np.int64)
    neighbours[new] = set(around)
    for other in around:
      neighbours[other].add(new)
    scores.update(zip(((o, new) for o in others.tolist()), similarity(new, others).tolist()))
  return Hierarchy(boxes, np.array(merges, np.int64).reshape(-1, 2), np.array(merged_scores, np.float64))


def rank_proposals(hierarchy_boxes: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
  """Pools the hierarchies of several strategies into one ranked list of distinct boxes.

  Args:
    hierarchy_boxes: per strategy, float [T_s, 4] boxes in creation order (the last is the top of the hierarchy).
    rng: draws T_s uniform numbers per strategy, in order.

  Returns:
    float64 [N, 4] distinct boxes, ordered by position-in-hierarchy times random number (smallest first).
  """
  values = [(len(b) - np.arange(len(b))) * rng.random(len(b)) for b in hierarchy_boxes]
  boxes = np.concatenate(hierarchy_boxes).reshape(-1, 4)
  order = np.argsort(np.concatenate(values + [np.zeros(0)]), kind="stable")
  ranked = boxes[order]
  _, first = np.unique(ranked, axis=0, return_index=True)
  return ranked[np.sort(first)]


def selective_search(image: np.ndarray, mode: str = "fast", strategy_list: tuple[Strategy, ...] | None = None,
                     sigma: float = SIGMA, min_size: int | None = None, seed: int = 0,
                     max_proposals: int | None = None) -> np.ndarray:
  """Class-agnostic object proposals of one image by selective search.

  Args:
    image: [H, W], [H, W, 1] or [H, W, 3] image, uint8 (0..255) or float in [0, 1]; grey images are treated as
      RGB with equal channels.
    mode: 'single', 'fast' or 'quality' (ignored when `strategy_list` is given).
    strategy_list: the strategies to run, instead of a mode's.
    sigma: Felzenszwalb smoothing.
    min_size: Felzenszwalb min_size (default: each strategy's k, as in the paper).
    seed: seed of the ranking's random numbers.
    max_proposals: keep at most this many boxes (all when None).

  Returns:
    float32 [N, 4] xyxy boxes in pixels (x2, y2 = last column, row + 1), best ranked first, no two equal.
  """
  rgb = features.as_rgb(image)
  chosen = strategies(mode) if strategy_list is None else tuple(strategy_list)
  colours, textures, segmentations, hierarchies = {}, {}, {}, []
  for strategy in chosen:
    space = strategy.colour_space
    if space not in colours:
      colours[space] = features.convert_colour(rgb, space)
    colour = colours[space]
    key = (space, strategy.k)
    if key not in segmentations:
      size = int(strategy.k) if min_size is None else min_size
      labels = felzenszwalb(colour, scale=strategy.k, sigma=sigma, min_size=size)
      segmentations[key] = (labels, int(labels.max()) + 1, {})
    labels, count, hists = segmentations[key]
    if "colour" in strategy.similarities and "colour" not in hists:
      hists["colour"] = features.colour_histograms(labels, colour, count)
    if "texture" in strategy.similarities and "texture" not in hists:
      if space not in textures:
        textures[space] = features.texture_bins(colour)
      hists["texture"] = features.texture_histograms(labels, textures[space], count)
    hierarchies.append(hierarchical_grouping(labels, strategy.similarities, hists.get("colour"),
                                             hists.get("texture")).boxes)
  boxes = rank_proposals(hierarchies, np.random.default_rng(seed))
  return boxes[:max_proposals].astype(np.float32)
