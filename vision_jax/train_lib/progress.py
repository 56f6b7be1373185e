"""What the user sees while training: a tqdm progress bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

import tqdm


def _line(text: str) -> None:
  print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def _format(metrics: dict[str, Any]) -> str:
  parts = []
  for name, value in metrics.items():
    if name == "images_per_sec":
      parts.append(f"{value:,.0f} img/s")
    elif name == "learning_rate":
      parts.append(f"lr {value:.3g}")
    else:
      parts.append(f"{name} {value:.4f}")
  return " ".join(parts)


class Progress:
  """Shows training progress; only process 0 prints.

  Args:
    total_steps: steps of the whole run.
    initial_step: where a resumed run starts.
    enabled: False on processes other than 0.
    interactive: force the progress bar (True) or log lines (False); None -> bar iff stderr is a terminal.
  """

  def __init__(self, total_steps: int, initial_step: int = 0, enabled: bool = True,
               interactive: bool | None = None):
    self.enabled = enabled
    self.total_steps = total_steps
    self.interactive = sys.stderr.isatty() if interactive is None else interactive
    self._bar = None
    if enabled and self.interactive:
      self._bar = tqdm.tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True,
                            file=sys.stderr)

  def update(self, step: int, metrics: dict[str, Any]) -> None:
    """Reports training metrics at `step` (steps done so far)."""
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.update(step - self._bar.n)
      self._bar.set_postfix_str(_format(metrics), refresh=True)
    else:
      _line(f"train step {step}/{self.total_steps}: {_format(metrics)}")

  def message(self, text: str) -> None:
    """Prints one line (e.g. an evaluation summary) without breaking the bar."""
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.write(text, file=sys.stderr)
    else:
      _line(text)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
