"""The sweep loop: propose each trial's values, run it as an ordinary run, tabulate the results.

Grid search walks every combination of the dimensions' grid values; random search draws trial i from
(seed, i) alone; TPE (Bergstra et al., 2011, "Algorithms for Hyper-Parameter Optimization") asks optuna, when it
is installed, given the results so far. Every trial's values are written to its trial.json before it runs, so
an interrupted sweep reruns with the same command: finished trials are skipped (their summary.json is read),
an unfinished one resumes from its checkpoints with its recorded values, failed ones stay failed unless
`retry_failed`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

from vision_jax.train_lib import run_lock, writers as metric_writers
from vision_jax.errors import ConfigError
from vision_jax.sweep import results, space as space_lib, trials as trials_lib

SEARCHES = ("grid", "random", "tpe")
SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.csv"


@dataclasses.dataclass
class SweepSpec:
  """What a sweep searches and how.

  Attributes:
    config: the experiment config spec ("configs/x.py[:args]").
    space: the searched dimensions.
    fixed: overrides applied to every trial before its searched values, [(dotted key, text)].
    search: "grid", "random" or "tpe".
    trials: number of trials (grid: 0 means every combination).
    metric: the final-evaluation metric that ranks trials.
    mode: "max" or "min".
    seed: seed of the random and TPE searches.
    grid_points: grid values per continuous dimension.
  """

  config: str
  space: list[space_lib.Dimension]
  fixed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  search: str = "random"
  trials: int = 10
  metric: str = "accuracy"
  mode: str = "max"
  seed: int = 0
  grid_points: int = 3

  def definition(self) -> dict[str, Any]:
    """What must not change between a sweep and its rerun (the trial count may grow)."""
    return {"config": self.config, "space": [d.describe() for d in self.space],
            "fixed": [list(f) for f in self.fixed], "search": self.search, "metric": self.metric,
            "mode": self.mode, "seed": self.seed, "grid_points": self.grid_points}


class _Planned:
  """Grid and random search: trial i's values are known in advance."""

  def __init__(self, spec: SweepSpec):
    if spec.search == "grid":
      self.points = space_lib.grid_points(spec.space, spec.grid_points)
      self.count = min(spec.trials, len(self.points)) if spec.trials > 0 else len(self.points)
    else:
      if spec.trials < 1:
        raise ConfigError("a random search needs --trials >= 1")
      self.points = [space_lib.random_point(spec.space, spec.seed, i) for i in range(spec.trials)]
      self.count = spec.trials

  def propose(self, index: int) -> dict[str, Any]:
    return self.points[index]

  def recorded(self, index: int, values: dict[str, Any]) -> None:
    if values != json.loads(json.dumps(self.points[index])):  # as trial.json stores it (tuples become lists)
      raise ConfigError(f"trial {index} was recorded with {values}, not this search's {self.points[index]}; "
                        "use another --workdir for a different search")

  def observe(self, index: int, values: dict[str, Any], value: float | None) -> None:
    del index, values, value


class _Tpe:
  """TPE search through optuna's ask-and-tell interface; earlier trials are told to it from their records."""

  def __init__(self, spec: SweepSpec):
    try:
      import optuna  # pylint: disable=import-outside-toplevel
    except ImportError:
      raise ConfigError("--search=tpe needs optuna, which is not installed: pip install optuna "
                        "(or use --search=random)") from None
    if spec.trials < 1:
      raise ConfigError("a TPE search needs --trials >= 1")
    self.optuna = optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    self.study = optuna.create_study(direction="maximize" if spec.mode == "max" else "minimize",
                                     sampler=optuna.samplers.TPESampler(seed=spec.seed))
    self.distributions = {d.key: self._distribution(d) for d in spec.space}
    self.count = spec.trials
    self.asked: dict[int, Any] = {}

  def _distribution(self, dim: space_lib.Dimension):
    dist = self.optuna.distributions
    if dim.kind == "choice":
      if not all(isinstance(a, (bool, int, float, str)) or a is None for a in dim.args):
        raise ConfigError(f"--search=tpe takes choices of numbers and strings only, not {dim.describe()}")
      return dist.CategoricalDistribution(dim.args)
    if dim.kind == "randint":
      return dist.IntDistribution(*dim.args)
    return dist.FloatDistribution(*dim.args, log=dim.kind == "loguniform")

  def propose(self, index: int) -> dict[str, Any]:
    self.asked[index] = self.study.ask(self.distributions)
    return dict(self.asked[index].params)

  def recorded(self, index: int, values: dict[str, Any]) -> None:
    del index, values

  def observe(self, index: int, values: dict[str, Any], value: float | None) -> None:
    state = self.optuna.trial.TrialState
    if index in self.asked:
      self.study.tell(self.asked.pop(index), value, state=state.COMPLETE if value is not None else state.FAIL)
    else:
      self.study.add_trial(self.optuna.trial.create_trial(
          params=values, distributions=self.distributions, value=value,
          state=state.COMPLETE if value is not None else state.FAIL))


def _check_definition(workdir: str, spec: SweepSpec) -> None:
  path = os.path.join(workdir, SWEEP_FILE)
  found = trials_lib.read_json(path)
  if found is not None and found != spec.definition():
    changed = sorted(k for k in spec.definition() if found.get(k) != spec.definition()[k])
    raise ConfigError(f"{workdir} holds a sweep with another {', '.join(changed)}; rerun with the same flags to "
                      "resume it, or pass another --workdir")
  os.makedirs(workdir, exist_ok=True)
  metric_writers.write_json(path, spec.definition())


def _metric_value(summary: dict[str, Any] | None, metric: str) -> float | None:
  if not summary or not summary.get("final_eval"):
    return None
  final = summary.get("final_eval", {})
  if metric not in final:
    raise ConfigError(f"--metric={metric} is not among the final evaluation's metrics "
                      f"({', '.join(sorted(final))}); pick one of them")
  return float(final[metric])


def _overrides(spec: SweepSpec, values: dict[str, Any]) -> list[tuple[str, str]]:
  return list(spec.fixed) + [(k, space_lib.override_text(v)) for k, v in values.items()]


def _row(spec: SweepSpec, index: int, record: dict[str, Any], summary: dict[str, Any] | None,
         directory: str) -> dict[str, Any]:
  row = {"trial": index, "status": record.get("status", ""), "error": record.get("error", ""),
         "directory": directory, **record["values"]}
  value = _metric_value(summary, spec.metric)
  row[spec.metric] = value
  row[f"best_{spec.metric}"] = results.best_eval_value(directory, spec.metric, spec.mode)
  if summary is not None:
    row.update(steps=summary.get("steps"), wall_s=summary.get("wall_time_sec"))
  return row


def columns(spec: SweepSpec) -> list[str]:
  """The results table's columns."""
  return (["rank", "trial"] + [d.key for d in spec.space] +
          [spec.metric, f"best_{spec.metric}", "steps", "wall_s", "status", "error"])


def run_sweep(spec: SweepSpec, workdir: str, runner: trials_lib.Runner, retry_failed: bool = False,
              log: Callable[[str], None] = print, should_stop: Callable[[], bool] = lambda: False
              ) -> list[dict[str, Any]]:
  """Runs (or resumes) a sweep in `workdir` and writes results.csv there.

  Args:
    spec: the sweep.
    workdir: the sweep directory; trial i runs in workdir/trial_{i:03d}.
    runner: runs one trial (`trials.SubprocessRunner`, `trials.InProcessRunner` or a test double).
    retry_failed: rerun trials recorded as failed.
    log: receives one line per trial.
    should_stop: polled after each trial; True stops the sweep (e.g. after SIGTERM).

  Returns:
    The rows of the trials run or finished so far, sorted by `spec.metric` (best first).

  Raises:
    ConfigError: a bad space, search or config key, or a workdir holding another sweep.
  """
  if spec.search not in SEARCHES:
    raise ConfigError(f"unknown --search={spec.search}; choose one of {', '.join(SEARCHES)}")
  if spec.mode not in ("max", "min"):
    raise ConfigError(f"--mode={spec.mode} must be max or min")
  clash = sorted({k for k, _ in spec.fixed} & {d.key for d in spec.space})
  if clash:
    raise ConfigError(f"{', '.join(clash)} is both searched (--space) and fixed (--config.*); drop one")
  proposer = _Tpe(spec) if spec.search == "tpe" else _Planned(spec)
  with run_lock.held(workdir):  # one live sweep per directory
    _check_definition(workdir, spec)
    return _run_trials(spec, workdir, runner, proposer, retry_failed, log, should_stop)


def _run_trials(spec: SweepSpec, workdir: str, runner: trials_lib.Runner, proposer: Any, retry_failed: bool,
                log: Callable[[str], None], should_stop: Callable[[], bool]) -> list[dict[str, Any]]:
  rows = []
  for index in range(proposer.count):
    directory = trials_lib.trial_dir(workdir, index)
    record = trials_lib.read_json(os.path.join(directory, trials_lib.RECORD))
    if record is None:
      record = {"trial": index, "values": proposer.propose(index), "status": "pending"}
      record["overrides"] = [list(o) for o in _overrides(spec, record["values"])]
      trials_lib.build_config(spec.config, _overrides(spec, record["values"]))  # bad keys fail before running
      trials_lib.write_record(directory, record)
    else:
      proposer.recorded(index, record["values"])
    summary = trials_lib.finished_summary(directory)
    shown = " ".join(f"{k}={results.format_value(v)}" for k, v in record["values"].items())
    if summary is None and (record["status"] != "failed" or retry_failed):
      log(f"trial {index + 1}/{proposer.count}: {shown} in {directory}")
      record["status"] = "running"
      trials_lib.write_record(directory, record)
      start = time.time()
      outcome = runner(spec.config, _overrides(spec, record["values"]), directory)
      record.update(status=outcome.status, error=outcome.error, seconds=round(time.time() - start, 1))
      trials_lib.write_record(directory, record)
      summary = outcome.summary if outcome.status == "completed" else None
      if outcome.status == "interrupted":
        log(f"trial {index + 1} interrupted: rerun the same command to resume it")
        break
    elif summary is not None:
      record["status"] = "completed"
    row = _row(spec, index, record, summary, directory)
    proposer.observe(index, record["values"], row[spec.metric])
    rows.append(row)
    what = f"{spec.metric} {results.format_value(row[spec.metric])}" if summary else f"failed: {record.get('error')}"
    log(f"trial {index + 1}/{proposer.count} {record['status']}: {shown}: {what}")
    if should_stop():
      break
  ranked = results.sort_rows(rows, spec.metric, spec.mode)
  results.write_csv(os.path.join(workdir, RESULTS_FILE), ranked, columns(spec) + ["directory"])
  return ranked
