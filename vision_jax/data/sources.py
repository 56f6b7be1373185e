"""Random-access sources the pipeline reads: `source[i]` -> {feature key: NumPy array}."""

from __future__ import annotations

import numpy as np


class ArraySource:
  """A random-access source over in-memory arrays: `source[i]` is {key: array[i]} for every key.

  Args:
    arrays: feature key -> array with the examples on axis 0 (all of the same length).
  """

  def __init__(self, arrays: dict[str, np.ndarray]):
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
      raise ValueError(f"arrays of different lengths {sorted(lengths)}")
    self.arrays = arrays
    self._length = lengths.pop()

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {k: v[index] for k, v in self.arrays.items()}

  def __getitems__(self, indices: list[int]) -> list[dict[str, np.ndarray]]:
    return [self[int(i)] for i in indices]

  def take(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """The examples at `indices` as whole arrays, {key: array[indices]} (one gather per feature)."""
    return {k: v[indices] for k, v in self.arrays.items()}
