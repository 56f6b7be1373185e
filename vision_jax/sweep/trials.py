"""Sweep trials: each an ordinary run in `<sweep workdir>/trial_NNN/`, its overrides recorded in trial.json.

A trial is finished when its run wrote summary.json with a completed (or early-stopped) run. Two runners:
`SubprocessRunner` (default) starts `python -m vision_jax.main` per trial, which isolates crashes and frees
all memory between trials, and `InProcessRunner` calls `train.train_and_evaluate` directly (no start-up cost).
A runner returns an `Outcome`; a trial that fails (bad value, divergence, crash) is recorded, not fatal.

A trial's process never outlives the sweep unattended: it runs in its own session (a Ctrl-C at the terminal
reaches the sweep only, which stops the trial with SIGTERM so that it saves its checkpoint), and on Linux the
kernel sends it SIGTERM when the sweep dies, even by SIGKILL (`PR_SET_PDEATHSIG`). A rerun waits for a previous
run of the trial that still holds its workdir's run lock (e.g. one still saving) before starting it again.
"""

from __future__ import annotations

import ctypes
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
from vision_jax.train_lib import run_lock, writers

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
  """The summary of a finished run in `directory` (completed or early-stopped, with results), else None (such a
  trial is run again: a run that finished without its summary rebuilds it)."""
  summary = writers.read_summary(directory)
  return summary if summary and summary.get("stop_reason") in _DONE else None


def build_config(config: str, overrides: Sequence[tuple[str, str]]) -> ml_collections.ConfigDict:
  """Loads the config spec and applies `overrides` in order (ConfigError for unknown keys or bad values)."""
  loaded = config_loading.load_config(config)
  for key, text in overrides:
    config_loading.apply_override(loaded, key, text)
  loaded.lock()
  return loaded


def _outcome_of_summary(summary: dict[str, Any] | None, what: str) -> Outcome:
  if summary is None or not summary.get("final_eval"):
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

  def interrupt(self, force: bool = False) -> None:
    """Asks the running trial to stop (SIGTERM: it saves a checkpoint and exits; `force`: SIGKILL) and marks
    it interrupted."""
    self.interrupted = True
    if self._child is not None and self._child.poll() is None:
      self._child.send_signal(signal.SIGKILL if force else signal.SIGTERM)

  def __call__(self, config: str, overrides: Sequence[tuple[str, str]], directory: str) -> Outcome:
    os.makedirs(directory, exist_ok=True)
    owner = run_lock.wait_until_free(directory, LOCK_WAIT_SECONDS)
    if owner is not None:
      return Outcome("failed", error=f"an earlier run (pid {owner}) still holds {directory} after "
                     f"{LOCK_WAIT_SECONDS:.0f} s; stop it, then rerun the sweep")
    args = [f"--config={config}", f"--workdir={directory}"] + [f"--config.{k}={v}" for k, v in overrides]
    log_path = os.path.join(directory, LOG)
    with open(log_path, "a") as log:
      log.write(f"$ {' '.join(self.command + args)}\n")
      log.flush()
      self._child = subprocess.Popen(self.command + args, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True, preexec_fn=_terminate_with_parent(os.getpid()))
      try:
        code = self._child.wait()
      except BaseException:  # the sweep itself is stopping (a second Ctrl-C): the trial must not run on alone
        self.interrupt(force=True)
        self._child.wait()
        raise
      finally:
        self._child = None
    if self.interrupted:
      return Outcome("interrupted", read_json(os.path.join(directory, SUMMARY)))
    if code == 0:
      return _outcome_of_summary(read_json(os.path.join(directory, SUMMARY)), "the run exited 0")
    reason = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return Outcome("failed", error=f"{_last_error(log_path) or reason} (see {log_path})")


def stop_on_signals(runner: Runner) -> list[str]:
  """Installs the sweep's SIGTERM and Ctrl-C handlers: the first asks the running trial to save and stop
  (`SubprocessRunner.interrupt`; an in-process trial gets the signal itself) and records the signal's name in the
  returned list, which the sweep polls between trials; a second Ctrl-C raises KeyboardInterrupt."""
  stop: list[str] = []

  def on_stop(signum, frame):
    del frame
    if stop and signum == signal.SIGINT:
      raise KeyboardInterrupt
    stop.append(signal.Signals(signum).name)
    if isinstance(runner, SubprocessRunner):
      runner.interrupt()

  signal.signal(signal.SIGTERM, on_stop)
  signal.signal(signal.SIGINT, on_stop)
  return stop


LOCK_WAIT_SECONDS = 120.0  # how long a trial waits for an earlier run of it to release its workdir


def _terminate_with_parent(parent: int):
  """A `preexec_fn` asking the kernel to SIGTERM the child when the sweep dies (Linux; elsewhere nothing)."""

  def preexec() -> None:
    try:
      libc = ctypes.CDLL(None, use_errno=True)
      libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
      return
    if os.getppid() != parent:  # the sweep died before prctl took effect
      os.kill(os.getpid(), signal.SIGTERM)

  return preexec


def _last_error(log_path: str) -> str:
  """The last `error:` line of a run's log (its UserError), else its last line (e.g. a traceback's end)."""
  with open(log_path, errors="replace") as f:
    lines = [line.strip() for line in f if line.strip()]
  errors = [line for line in lines if line.startswith("error:")]
  return (errors or lines or [""])[-1]
