"""Callbacks driven by evaluation results: early stopping and reduce-LR-on-plateau.

(The keep-best checkpoint is `Checkpointer.save_best`.) Each callback sees the metrics of every evaluation
and keeps a tiny state that is saved in the checkpoint meta, so a resumed run behaves like an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from vision_jax.errors import ConfigError


@dataclasses.dataclass
class PlateauTracker:
  """Counts evaluations since the monitored metric last improved by more than `min_delta`."""

  metric: str
  mode: str = "min"
  min_delta: float = 0.0
  best: float = math.nan
  waited: int = 0

  def update(self, metrics: dict[str, Any]) -> bool:
    """Records one evaluation; returns True if it improved on the best so far."""
    if self.metric not in metrics:
      raise ConfigError(f"callback metric {self.metric!r} is not among the evaluation's metrics "
                        f"({', '.join(sorted(metrics))}); pick one of them")
    value = float(metrics[self.metric])
    sign = 1.0 if self.mode == "max" else -1.0
    improved = math.isnan(self.best) or sign * (value - self.best) > self.min_delta
    if improved:
      self.best, self.waited = value, 0
    else:
      self.waited += 1
    return improved

  def state(self) -> dict[str, Any]:
    return {"best": None if math.isnan(self.best) else self.best, "waited": self.waited}

  def load(self, state: dict[str, Any]) -> None:
    self.best = math.nan if state.get("best") is None else float(state["best"])
    self.waited = int(state.get("waited", 0))


class EarlyStopping:
  """Stops training after `patience` evaluations without improvement of `metric`."""

  def __init__(self, metric: str, mode: str, patience: int, min_delta: float = 0.0):
    self.tracker = PlateauTracker(metric, mode, min_delta)
    self.patience = patience

  def on_eval(self, metrics: dict[str, Any]) -> bool:
    """Returns True when training should stop."""
    self.tracker.update(metrics)
    return self.tracker.waited >= self.patience


class ReduceLROnPlateau:
  """Multiplies the learning-rate scale by `factor` after `patience` evaluations without improvement."""

  def __init__(self, metric: str, mode: str, patience: int, factor: float, min_scale: float,
               min_delta: float = 0.0):
    self.tracker = PlateauTracker(metric, mode, min_delta)
    self.patience, self.factor, self.min_scale = patience, factor, min_scale

  def on_eval(self, metrics: dict[str, Any], lr_scale: float) -> float:
    """Returns the new learning-rate scale."""
    self.tracker.update(metrics)
    if self.tracker.waited >= self.patience:
      self.tracker.waited = 0
      return max(lr_scale * self.factor, self.min_scale)
    return lr_scale


def from_config(cfg) -> dict[str, Any]:
  """Builds the enabled callbacks of a `callbacks` config section, by name."""
  out: dict[str, Any] = {}
  if cfg.early_stopping_patience > 0:
    out["early_stopping"] = EarlyStopping(cfg.early_stopping_metric, cfg.early_stopping_mode,
                                          cfg.early_stopping_patience, cfg.min_delta)
  if cfg.reduce_lr_patience > 0:
    out["reduce_lr"] = ReduceLROnPlateau(cfg.reduce_lr_metric, cfg.reduce_lr_mode, cfg.reduce_lr_patience,
                                         cfg.reduce_lr_factor, cfg.reduce_lr_min_scale, cfg.min_delta)
  return out
