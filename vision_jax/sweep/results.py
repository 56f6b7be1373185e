"""The sweep's results table: one row per trial, sorted by the monitored metric, as CSV and as text."""

from __future__ import annotations

import csv
import math
import os
from typing import Any, Sequence

from vision_jax.train_lib import writers as metric_writers


def best_eval_value(directory: str, metric: str, mode: str) -> float | None:
  """The best value of `metric` over a run's evaluations (its metrics.csv), or None without any."""
  path = os.path.join(directory, "metrics.csv")
  if not os.path.exists(path):
    return None
  values = [v for _, v in metric_writers.read_csv(path).get("eval", {}).get(metric, [])]
  return (max(values) if mode == "max" else min(values)) if values else None


def sort_rows(rows: Sequence[dict[str, Any]], metric: str, mode: str) -> list[dict[str, Any]]:
  """Rows with a finite `metric` first, best first ("max": descending; "min": ascending), ties by trial;
  then the rest (failed, unfinished, NaN) by trial."""

  def key(row):
    value = row.get(metric)
    if value is None or not math.isfinite(value):
      return (1, 0.0, row["trial"])
    return (0, -value if mode == "max" else value, row["trial"])

  ranked = sorted(rows, key=key)
  for rank, row in enumerate(ranked, 1):
    finite = row.get(metric) is not None and math.isfinite(row[metric])
    row["rank"] = rank if finite else ""
  return ranked


def format_value(value: Any) -> str:
  """A table cell: floats to 4 significant places, None as empty."""
  if value is None:
    return ""
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value)


def write_csv(path: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
  """Writes the rows (full precision) with a header, atomically."""
  with open(path + ".tmp", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      writer.writerow({c: "" if row.get(c) is None else row[c] for c in columns})
  os.replace(path + ".tmp", path)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
  """The rows as an aligned text table with a header line (floats to 4 significant places)."""
  cells = [list(columns)] + [[format_value(row.get(c)) for c in columns] for row in rows]
  widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
  return "\n".join("  ".join(text.ljust(w) for text, w in zip(r, widths)).rstrip() for r in cells)
