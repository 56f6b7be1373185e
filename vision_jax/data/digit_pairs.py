"""Pairs of digits for a two-input, three-target task, made from the embedded MNIST sample.

Example i pairs a first digit (each digit of the split once, in a seeded order) with a second digit that has
the same class for half of the pairs and a different class for the other half. Targets per pair:
  * `label`: the first digit's class (multi-class),
  * `digit_sum`: the sum of the two classes, 0..18 (regression),
  * `same`: 1 if the two digits have the same class, else 0 (binary),
and `label2`, the second digit's class.

Example:
  >>> first, second = pair_indices(np.array([3, 3, 5, 5, 7]), seed=0)
  >>> first.shape == second.shape == (5,)
  True
"""

from __future__ import annotations

import numpy as np


def pair_indices(labels: np.ndarray, seed: int, same_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
  """Indices (first, second) of digit pairs, deterministic in `seed`.

  Args:
    labels: [M] classes of the digits to pair.
    seed: NumPy generator seed.
    same_fraction: the fraction of pairs whose second digit has the first one's class (exactly
      round(M * same_fraction) of them, as far as classes allow).

  Returns:
    (first, second) int64 [M]: `first` is a permutation of 0..M-1; `second[i] != first[i]` whenever the first
    digit's class has another example; same-class pairs are those with labels[first] == labels[second].
  """
  rng = np.random.default_rng(seed)
  m = labels.shape[0]
  classes = np.unique(labels)
  members = {int(c): np.flatnonzero(labels == c) for c in classes}
  first = rng.permutation(m)
  want_same = np.zeros(m, bool)
  want_same[:int(round(m * same_fraction))] = True
  want_same = rng.permutation(want_same)
  if classes.size == 1:
    want_same[:] = True
  first_class = labels[first]
  # Different-class partners: a class other than the first's, drawn uniformly among the other classes.
  shift = rng.integers(1, classes.size, m) if classes.size > 1 else np.zeros(m, np.int64)
  position = np.searchsorted(classes, first_class)
  partner_class = np.where(want_same, first_class, classes[(position + shift) % classes.size])
  draws = rng.random(m)
  second = np.empty(m, np.int64)
  for c in classes:
    pool = members[int(c)]
    rows = np.flatnonzero(partner_class == c)
    picks = pool[np.minimum((draws[rows] * pool.size).astype(np.int64), pool.size - 1)]
    # A same-class pick that is the first digit itself moves to the next member of its class.
    itself = picks == first[rows]
    if pool.size > 1:
      picks[itself] = pool[(np.searchsorted(pool, picks[itself]) + 1) % pool.size]
    second[rows] = picks
  return first, second


def make_pairs(images: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
  """The pair features for every digit of a split.

  Args:
    images: uint8 [M, H, W] or [M, H, W, C] digits.
    labels: [M] classes.
    seed: pairing seed (see `pair_indices`).

  Returns:
    {"image", "image2": uint8 [M, H, W, C]; "label", "label2": int32 [M]; "digit_sum": float32 [M];
    "same": int32 [M]}.
  """
  if images.ndim == 3:
    images = images[..., None]
  first, second = pair_indices(labels, seed)
  label, label2 = labels[first].astype(np.int32), labels[second].astype(np.int32)
  return {"image": images[first], "image2": images[second], "label": label, "label2": label2,
          "digit_sum": (label + label2).astype(np.float32), "same": (label == label2).astype(np.int32)}
