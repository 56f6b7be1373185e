"""Where metrics go: a CSV file, TensorBoard event files (tensorboardX, no TensorFlow) and summary.json.

Only process 0 writes; other processes get a writer that does nothing.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Sequence

import numpy as np

from vision_jax.errors import os_errors_name


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
    _repair_csv(self.csv_path)
    new = not os.path.exists(self.csv_path)
    self._csv_file = open(self.csv_path, "a", newline="")
    self._csv = csv.writer(self._csv_file)
    if new:
      self._csv.writerow(_HEADER)
      self._csv_file.flush()
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, metrics: dict[str, Any]) -> None:
    """Writes every scalar of `metrics` (non-scalars such as confusion matrices are skipped)."""
    if not self.enabled:
      return
    scalars = {name: float(value) for name, value in metrics.items() if np.ndim(value) == 0}
    with os_errors_name(self.csv_path):  # a full disk fails the buffered write without naming the file
      for name, value in scalars.items():
        self._csv.writerow([step, split, name, f"{value:.8g}"])
      self._csv_file.flush()
    with os_errors_name(self._tb.logdir):
      for name, value in scalars.items():
        self._tb.add_scalar(f"{split}/{name}", value, step)
      self._tb.flush()

  def close(self) -> None:
    if self.enabled:
      with os_errors_name(self.csv_path):
        self._csv_file.close()
      with os_errors_name(self._tb.logdir):
        self._tb.close()


_HEADER = ["step", "split", "metric", "value"]


def _rows(path: str):
  """The well-formed (step, split, metric, value) rows of a metrics CSV; torn or garbage lines are skipped."""
  with open(path, newline="", errors="replace") as f:
    for row in csv.reader(f):
      if len(row) != 4 or row == _HEADER:
        continue
      try:
        yield int(row[0]), row[1], row[2], float(row[3])
      except ValueError:
        continue


def _repair_csv(path: str) -> None:
  """Rewrites a metrics CSV that a kill left without its header or with a torn last line (atomically)."""
  if not os.path.exists(path):
    return
  with open(path, newline="", errors="replace") as f:
    text = f.read()
  if text.startswith(",".join(_HEADER) + "\n") and (not text or text.endswith("\n")) and "\x00" not in text:
    return
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(_HEADER)
    for step, split, metric, value in _rows(path):
      writer.writerow([step, split, metric, f"{value:.8g}"])
  os.replace(tmp, path)


def read_csv(path: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
  """Reads metrics.csv into {split: {metric: [(step, value), ...]}} (last value wins for repeated steps;
  malformed lines, e.g. one torn by a kill, are skipped)."""
  table: dict[str, dict[str, dict[int, float]]] = {}
  for step, split, metric, value in _rows(path):
    table.setdefault(split, {}).setdefault(metric, {})[step] = value
  return {split: {m: sorted(v.items()) for m, v in metrics.items()} for split, metrics in table.items()}


def write_json(path: str, data: dict[str, Any]) -> None:
  """Writes `data` as indented JSON atomically (temporary file then rename)."""
  tmp = path + ".tmp"
  with os_errors_name(tmp), open(tmp, "w") as f:
    json.dump(data, f, indent=2, sort_keys=True, default=float)
  os.replace(tmp, path)


def read_summary(workdir: str) -> dict[str, Any] | None:
  """The summary.json of a finished run in `workdir`, or None when it is missing, unreadable or has no results."""
  try:
    with open(os.path.join(workdir, "summary.json")) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return None
  return summary if isinstance(summary, dict) and summary.get("final_eval") else None


# Metrics that curves.png leaves out: they are not learning curves.
_NOT_CURVES = ("learning_rate", "num_examples", "step")


def curve_names(history: dict[str, Any], curve_metrics: Sequence[str] | None) -> list[str]:
  """The metrics curves.png draws: `curve_metrics` (every logged learning metric when None), those logged."""
  logged = sorted({m for split in history.values() for m in split
                   if m not in _NOT_CURVES and not m.endswith("_per_sec")})
  return [m for m in (curve_metrics or logged) if m in logged]


def write_curves(workdir: str, curve_metrics: Sequence[str] | None) -> str | None:
  """curves.png of the run's metrics.csv (`curve_names`); nothing when no metric was logged (no blank picture).

  Returns:
    The path written, or None.
  """
  from vision_jax import plots  # pylint: disable=import-outside-toplevel  (matplotlib only when drawing)
  csv_path = os.path.join(workdir, "metrics.csv")
  history = read_csv(csv_path) if os.path.exists(csv_path) else {}
  names = curve_names(history, curve_metrics)
  if not names:
    return None
  path = os.path.join(workdir, "curves.png")
  plots.plot_curves(history, path, metrics=names)
  return path
