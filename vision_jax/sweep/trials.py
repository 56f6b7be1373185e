"""Sweep trials: each an ordinary run in `<sweep workdir>/trial_NNN/`, its overrides recorded in trial.json.

A trial is finished when its run wrote summary.json with a completed (or early-stopped) run. Two runners:
`SubprocessRunner` (default) starts `python -m vision_jax.main` per trial, which isolates crashes and frees
all memory between trials, and `InProcessRunner` calls `train.train_and_evaluate` directly (no start-up cost).
A runner returns an `Outcome`; a trial that fails (bad value, divergence, crash) is recorded, not fatal.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from typing import Any, Protocol, Sequence

import ml_collections

from vision_jax import config_loading
from vision_jax.errors import UserError

RECORD = "trial.json"
SUMMARY = "summary.json"
LOG = "output.log"
_DONE = ("completed", "early_stopping")


@dataclasses.dataclass
class Outcome:
  """How a trial's run ended.

  Attributes:
    status: "completed", "failed" or "interrupted" (stopped by a signal; rerun the sweep to resume it).
    summary: the run's summary.json contents when it completed.
    error: a one-line reason when it failed.
  """

  status: str
  summary: dict[str, Any] | None = None
  error: str = ""


class Runner(Protocol):
  """Runs one trial: config spec, overrides [(dotted key, text)], trial directory -> Outcome."""

  def __call__(self, config: str, overrides: Sequence[tuple[str, str]], directory: str) -> Outcome:
    ...


def trial_dir(workdir: str, index: int) -> str:
  """The directory of trial `index`: workdir/trial_000, trial_001, ..."""
  return os.path.join(workdir, f"trial_{index:03d}")


def read_json(path: str) -> dict[str, Any] | None:
  """The JSON object in `path`, or None when the file is missing or unreadable (e.g. cut by a kill)."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write_record(directory: str, record: dict[str, Any]) -> None:
  """Writes trial.json atomically."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, RECORD)
  with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)
  os.replace(path + ".tmp", path)


def finished_summary(directory: str) -> dict[str, Any] | None:
  """The summary of a finished run in `directory` (completed or early-stopped), else None."""
  summary = read_json(os.path.join(directory, SUMMARY))
  return summary if summary and summary.get("stop_reason") in _DONE else None


def build_config(config: str, overrides: Sequence[tuple[str, str]]) -> ml_collections.ConfigDict:
  """Loads the config spec and applies `overrides` in order (ConfigError for unknown keys or bad values)."""
  loaded = config_loading.load_config(config)
  for key, text in overrides:
    config_loading.apply_override(loaded, key, text)
  loaded.lock()
  return loaded


def _outcome_of_summary(summary: dict[str, Any] | None, what: str) -> Outcome:
  if summary is None:
    return Outcome("failed", error=f"{what} but wrote no summary.json")
  if summary.get("stop_reason") in _DONE:
    return Outcome("completed", summary)
  return Outcome("interrupted", summary)


class InProcessRunner:
  """Runs a trial with `train.train_and_evaluate` in this process; a UserError marks it failed."""

  def __call__(self, config: str, overrides: Sequence[tuple[str, str]], directory: str) -> Outcome:
    from vision_jax import train
    try:
      summary = train.train_and_evaluate(build_config(config, overrides), directory)
    except UserError as e:
      return Outcome("failed", error=str(e).splitlines()[0] if str(e) else type(e).__name__)
    return _outcome_of_summary(summary, "the run ended")


class SubprocessRunner:
  """Runs a trial as `python -m vision_jax.main` with its output in the trial's output.log.

  Args:
    command: the program and arguments before the run's flags (default: this Python, `-m vision_jax.main`).
    env: environment of the child processes (default: this process's).
  """

  def __init__(self, command: Sequence[str] | None = None, env: dict[str, str] | None = None):
    self.command = list(command or [sys.executable, "-m", "vision_jax.main"])
    self.env = env
    self._child: subprocess.Popen | None = None
    self.interrupted = False

  def interrupt(self) -> None:
    """Asks the running trial to stop (SIGTERM: it saves a checkpoint and exits) and marks it interrupted."""
    self.interrupted = True
    if self._child is not None and self._child.poll() is None:
      self._child.send_signal(signal.SIGTERM)

  def __call__(self, config: str, overrides: Sequence[tuple[str, str]], directory: str) -> Outcome:
    os.makedirs(directory, exist_ok=True)
    args = [f"--config={config}", f"--workdir={directory}"] + [f"--config.{k}={v}" for k, v in overrides]
    log_path = os.path.join(directory, LOG)
    with open(log_path, "a") as log:
      log.write(f"$ {' '.join(self.command + args)}\n")
      log.flush()
      self._child = subprocess.Popen(self.command + args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
      try:
        code = self._child.wait()
      finally:
        self._child = None
    if self.interrupted:
      return Outcome("interrupted", read_json(os.path.join(directory, SUMMARY)))
    if code == 0:
      return _outcome_of_summary(read_json(os.path.join(directory, SUMMARY)), "the run exited 0")
    reason = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return Outcome("failed", error=f"{_last_error(log_path) or reason} (see {log_path})")


def _last_error(log_path: str) -> str:
  """The last `error:` line of a run's log (its UserError), else its last line (e.g. a traceback's end)."""
  with open(log_path, errors="replace") as f:
    lines = [line.strip() for line in f if line.strip()]
  errors = [line for line in lines if line.startswith("error:")]
  return (errors or lines or [""])[-1]
