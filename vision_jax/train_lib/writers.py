"""Where metrics go: a CSV file, TensorBoard event files (tensorboardX, no TensorFlow) and summary.json.

Only process 0 writes; other processes get a writer that does nothing.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import numpy as np


class MetricWriter:
  """Appends scalar metrics to `metrics.csv` and TensorBoard event files in `workdir`.

  Rows are (step, split, name, value); a resumed run appends to the same files.
  """

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self.workdir = workdir
    self._tb = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    self.csv_path = os.path.join(workdir, "metrics.csv")
    new = not os.path.exists(self.csv_path)
    self._csv_file = open(self.csv_path, "a", newline="")
    self._csv = csv.writer(self._csv_file)
    if new:
      self._csv.writerow(["step", "split", "metric", "value"])
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, metrics: dict[str, Any]) -> None:
    """Writes every scalar of `metrics` (non-scalars such as confusion matrices are skipped)."""
    if not self.enabled:
      return
    for name, value in metrics.items():
      if np.ndim(value) != 0:
        continue
      self._csv.writerow([step, split, name, f"{float(value):.8g}"])
      self._tb.add_scalar(f"{split}/{name}", float(value), step)
    self._csv_file.flush()
    self._tb.flush()

  def close(self) -> None:
    if self.enabled:
      self._csv_file.close()
      self._tb.close()


def read_csv(path: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
  """Reads metrics.csv into {split: {metric: [(step, value), ...]}} (last value wins for repeated steps)."""
  table: dict[str, dict[str, dict[int, float]]] = {}
  with open(path, newline="") as f:
    for row in csv.DictReader(f):
      table.setdefault(row["split"], {}).setdefault(row["metric"], {})[int(row["step"])] = float(row["value"])
  return {split: {m: sorted(v.items()) for m, v in metrics.items()} for split, metrics in table.items()}


def write_json(path: str, data: dict[str, Any]) -> None:
  """Writes `data` as indented JSON atomically (temporary file then rename)."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=2, sort_keys=True, default=float)
  os.replace(tmp, path)
