"""Hyper-parameter sweeps: space parsing, grid and random proposals, resume, the results table, runners."""

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import vision_jax.configs
from vision_jax import config_loading
from vision_jax.errors import ConfigError
from vision_jax.sweep import search, space, trials

CONFIG = os.path.join(os.path.dirname(vision_jax.configs.__file__), "mnist_lenet.py")
LR, BATCH = "optimizer.learning_rate=loguniform(1e-4, 1e-2)", "input.batch_size=choice(64, 128, 256)"


# ---------------------------------------------------------------- space parsing


def test_parse_each_kind():
  assert space.parse_dimension(LR) == space.Dimension("optimizer.learning_rate", "loguniform", (1e-4, 1e-2))
  assert space.parse_dimension(BATCH).args == (64, 128, 256)
  assert space.parse_dimension("loss.label_smoothing = uniform(0, 0.2)").args == (0.0, 0.2)
  assert space.parse_dimension("model.kwargs.width=randint(16, 64)").args == (16, 64)
  assert space.parse_dimension("optimizer.name=choice(adam, 'sgd')").args == ("adam", "sgd")  # bare words
  assert space.parse_dimension("input.batch_size=[32, 64]") == space.Dimension("input.batch_size", "choice", (32, 64))


@pytest.mark.parametrize("text,message", [
    ("optimizer.learning_rate", "needs a dotted config key and a distribution"),
    ("1bad=choice(1)", "needs a dotted config key"),
    ("a=normal(0, 1)", "unknown distribution 'normal'"),
    ("a=uniform(1)", r"uniform\(\) takes two numbers"),
    ("a=uniform(2, 1)", "needs low < high"),
    ("a=loguniform(0, 1)", "needs 0 < low"),
    ("a=randint(1.5, 3)", "needs integers with low <= high"),
    ("a=choice()", "at least one value"),
    ("a=choice(__import__('os'))", "is not a literal"),  # parsed, never evaluated
    ("a=choice(1,", "cannot parse"),
    ("a=3", "is not a distribution"),
])
def test_parse_errors(text, message):
  with pytest.raises(ConfigError, match=message):
    space.parse_dimension(text)


def test_space_rejects_repeated_keys_and_no_dimensions():
  with pytest.raises(ConfigError, match="gives input.batch_size more than once"):
    space.parse_space([BATCH, "input.batch_size=choice(32)"])
  with pytest.raises(ConfigError, match="at least one --space"):
    space.parse_space([])


# ---------------------------------------------------------------- proposals


def test_grid_enumerates_every_combination_last_fastest():
  dims = space.parse_space(["input.batch_size=choice(64, 128)", LR])
  points = space.grid_points(dims, points=3)
  assert [p["input.batch_size"] for p in points] == [64, 64, 64, 128, 128, 128]
  np.testing.assert_allclose([p["optimizer.learning_rate"] for p in points[:3]], [1e-4, 1e-3, 1e-2])  # log spaced
  assert space.parse_dimension("a=uniform(0, 1)").grid(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
  assert space.parse_dimension("a=randint(1, 3)").grid(5) == [1, 2, 3]


def test_random_draws_are_seeded_per_trial_and_within_bounds():
  dims = space.parse_space([LR, BATCH, "a=randint(1, 3)"])
  assert space.random_point(dims, 7, 4) == space.random_point(dims, 7, 4)
  assert space.random_point(dims, 7, 4) != space.random_point(dims, 7, 5)
  assert space.random_point(dims, 7, 4) != space.random_point(dims, 8, 4)
  draws = [space.random_point(dims, 0, i) for i in range(2000)]
  lrs = np.array([d["optimizer.learning_rate"] for d in draws])
  assert lrs.min() >= 1e-4 and lrs.max() <= 1e-2
  # Uniform in log space: half the draws fall below the geometric mean 1e-3 (a linear-uniform draw would put
  # only (1e-3 - 1e-4) / (1e-2 - 1e-4) = 9% there), and log10 spreads evenly over [-4, -2].
  assert abs(np.mean(lrs < 1e-3) - 0.5) < 0.05
  assert np.histogram(np.log10(lrs), bins=4, range=(-4, -2))[0].min() > 400
  assert {d["input.batch_size"] for d in draws} == {64, 128, 256}
  assert {d["a"] for d in draws} == {1, 2, 3}  # randint includes both ends


def test_drawn_values_survive_the_override_round_trip():
  config = config_loading.load_config(CONFIG)
  for key, value in [("optimizer.learning_rate", 0.000123456789), ("input.batch_size", 64),
                     ("optimizer.name", "sgd"), ("optimizer.nesterov", True)]:
    config_loading.apply_override(config, key, space.override_text(value))
    section, name = key.split(".")
    assert config[section][name] == value and type(config[section][name]) is type(value)


# ---------------------------------------------------------------- the sweep loop with a fake runner


def _score(lr):
  return 1.0 - abs(math.log10(lr) + 3.0)  # best at 1e-3


class FakeRunner:
  """Writes a summary.json whose accuracy depends on the learning rate; can interrupt or fail trials."""

  def __init__(self, interrupt_at=None, fail_batch=None):
    self.calls, self.interrupt_at, self.fail_batch = [], interrupt_at, fail_batch

  def __call__(self, config, overrides, directory):
    values = dict(overrides)
    self.calls.append((os.path.basename(directory), values))
    if len(self.calls) - 1 == self.interrupt_at:
      return trials.Outcome("interrupted")
    if int(values["input.batch_size"]) == self.fail_batch:
      return trials.Outcome("failed", error="error: the training loss became non-finite")
    summary = {"stop_reason": "completed", "steps": 5, "wall_time_sec": 0.5,
               "final_eval": {"accuracy": _score(float(values["optimizer.learning_rate"])), "loss": 1.0}}
    with open(os.path.join(directory, "summary.json"), "w") as f:
      json.dump(summary, f)
    return trials.Outcome("completed", summary)


def _spec(**kwargs):
  defaults = dict(config=CONFIG, space=space.parse_space([LR, BATCH]), fixed=[("num_epochs", "1")],
                  search="random", trials=5, seed=3)
  defaults.update(kwargs)
  return search.SweepSpec(**defaults)


def _read_table(workdir):
  with open(os.path.join(workdir, "results.csv"), newline="") as f:
    return list(csv.DictReader(f))


def test_results_are_sorted_by_the_metric(tmp_path):
  runner = FakeRunner()
  rows = search.run_sweep(_spec(), str(tmp_path), runner, log=lambda line: None)
  table = _read_table(tmp_path)
  accuracies = [float(r["accuracy"]) for r in table]
  assert accuracies == sorted(accuracies, reverse=True) and [r["rank"] for r in table] == ["1", "2", "3", "4", "5"]
  expected = sorted(_score(space.random_point(_spec().space, 3, i)["optimizer.learning_rate"]) for i in range(5))
  np.testing.assert_allclose(accuracies, expected[::-1])
  assert [r["trial"] for r in rows] == [int(r["trial"]) for r in table]
  # Every trial ran with the fixed override first, then its drawn values, all recorded in trial.json.
  record = json.load(open(tmp_path / "trial_002" / "trial.json"))
  assert record["overrides"][0] == ["num_epochs", "1"] and record["status"] == "completed"
  assert record["values"] == space.random_point(_spec().space, 3, 2)
  minimized = search.results.sort_rows([dict(r, accuracy=float(r["accuracy"]), trial=int(r["trial"]))
                                        for r in table], "accuracy", "min")
  assert [r["accuracy"] for r in minimized] == sorted(accuracies)


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
  first = FakeRunner(interrupt_at=2)
  rows = search.run_sweep(_spec(), str(tmp_path), first, log=lambda line: None)
  assert [c[0] for c in first.calls] == ["trial_000", "trial_001", "trial_002"] and len(rows) == 2
  assert json.load(open(tmp_path / "trial_002" / "trial.json"))["status"] == "interrupted"
  second = FakeRunner()
  rows = search.run_sweep(_spec(), str(tmp_path), second, log=lambda line: None)
  assert [c[0] for c in second.calls] == ["trial_002", "trial_003", "trial_004"]  # finished ones are skipped
  assert second.calls[0][1] == first.calls[2][1]  # the unfinished trial resumes with its recorded values
  assert len(rows) == 5 and len(_read_table(tmp_path)) == 5
  third = FakeRunner()
  search.run_sweep(_spec(trials=6), str(tmp_path), third, log=lambda line: None)  # a longer sweep adds trials
  assert [c[0] for c in third.calls] == ["trial_005"]


def test_failed_trials_are_recorded_not_fatal(tmp_path):
  spec = _spec(search="grid", space=space.parse_space(["optimizer.learning_rate=choice(0.001, 0.01)", BATCH]),
               trials=0)
  runner = FakeRunner(fail_batch=128)
  rows = search.run_sweep(spec, str(tmp_path), runner, log=lambda line: None)
  assert len(runner.calls) == 6
  assert [r["status"] for r in rows] == ["completed"] * 4 + ["failed"] * 2  # failures sort last
  assert all(r["rank"] == "" and "non-finite" in r["error"] for r in rows[4:])
  again = FakeRunner()
  search.run_sweep(spec, str(tmp_path), again, log=lambda line: None)
  assert again.calls == []
  search.run_sweep(spec, str(tmp_path), again, retry_failed=True, log=lambda line: None)
  assert [v["input.batch_size"] for _, v in again.calls] == ["128", "128"]


def test_sweep_errors(tmp_path):
  search.run_sweep(_spec(trials=1), str(tmp_path), FakeRunner(), log=lambda line: None)
  with pytest.raises(ConfigError, match="holds a sweep with another seed"):
    search.run_sweep(_spec(seed=4), str(tmp_path), FakeRunner(), log=lambda line: None)
  with pytest.raises(ConfigError, match="--metric=top1 is not among"):
    search.run_sweep(_spec(trials=1, metric="top1"), str(tmp_path / "m"), FakeRunner(), log=lambda line: None)
  runner = FakeRunner()
  with pytest.raises(ConfigError, match="unknown config key 'optimizer.lr'"):
    search.run_sweep(_spec(space=space.parse_space(["optimizer.lr=uniform(0, 1)"])), str(tmp_path / "k"), runner)
  assert runner.calls == []  # a bad key fails before any trial runs
  with pytest.raises(ConfigError, match="both searched"):
    search.run_sweep(_spec(fixed=[("input.batch_size", "32")]), str(tmp_path / "c"), runner)


# ---------------------------------------------------------------- runners and the command line

_FAKE_MAIN = """
import json, os, sys
flags = dict(a[2:].split("=", 1) for a in sys.argv[1:])
if flags["config.input.batch_size"] == "13":
  print("error: input.batch_size=13 is not divisible"); sys.exit(2)
os.makedirs(flags["workdir"], exist_ok=True)
json.dump({"stop_reason": "completed", "final_eval": {"accuracy": 0.5}}, open(flags["workdir"] + "/summary.json", "w"))
"""


def test_subprocess_runner_reads_the_summary_or_the_error_line(tmp_path):
  runner = trials.SubprocessRunner(command=[sys.executable, "-c", _FAKE_MAIN])
  done = runner("configs/x.py", [("input.batch_size", "64")], str(tmp_path / "a"))
  assert done.status == "completed" and done.summary["final_eval"]["accuracy"] == 0.5
  failed = runner("configs/x.py", [("input.batch_size", "13")], str(tmp_path / "b"))
  assert failed.status == "failed" and failed.error.startswith("error: input.batch_size=13 is not divisible")
  log = open(tmp_path / "b" / "output.log").read()
  assert "--config=configs/x.py" in log and "--config.input.batch_size=13" in log


def _cli(*args, cwd=None):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "vision_jax.sweep", *args], capture_output=True, text=True,
                        timeout=300, env=env, cwd=cwd)


def test_cli_errors_are_one_line(tmp_path):
  bad = _cli(f"--config={CONFIG}", f"--workdir={tmp_path}", "--space=a=normal(0, 1)")
  assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
      "error: --space='a=normal(0, 1)': unknown distribution 'normal'; write --space='a.b=KIND(ARGS)' with KIND "
      "one of choice(v1, v2, ...), uniform(low, high), loguniform(low, high), randint(low, high)"]
  try:
    import optuna  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    tpe = _cli(f"--config={CONFIG}", f"--workdir={tmp_path}", "--search=tpe", "--trials=2", f"--space={LR}")
    assert tpe.returncode == 2 and tpe.stderr.strip().splitlines() == [
        "error: --search=tpe needs optuna, which is not installed: pip install optuna (or use --search=random)"]


def test_tpe_search_with_optuna(tmp_path):
  pytest.importorskip("optuna")
  runner = FakeRunner()
  rows = search.run_sweep(_spec(search="tpe", trials=4), str(tmp_path), runner, log=lambda line: None)
  assert len(rows) == 4 and all(1e-4 <= r["optimizer.learning_rate"] <= 1e-2 for r in rows)
  more = FakeRunner()
  search.run_sweep(_spec(search="tpe", trials=5), str(tmp_path), more, log=lambda line: None)
  assert [c[0] for c in more.calls] == ["trial_004"]  # earlier trials are told to optuna, not rerun


def _smoke_spec(data_dir, steps):
  return search.SweepSpec(config=f"{CONFIG}:smoke", search="grid", trials=0,
                          space=space.parse_space(["optimizer.learning_rate=choice(0.003, 0.0003)"]),
                          fixed=[("dataset.data_dir", data_dir), ("num_train_steps", str(steps))])


def _check_real_table(workdir, steps):
  table = _read_table(workdir)
  assert len(table) == 2 and {r["status"] for r in table} == {"completed"}
  for row in table:
    summary = json.load(open(os.path.join(row["directory"], "summary.json")))
    assert summary["steps"] == steps and float(row["accuracy"]) == pytest.approx(summary["final_eval"]["accuracy"])
    assert float(row["best_accuracy"]) >= float(row["accuracy"]) - 1e-6
  assert float(table[0]["accuracy"]) >= float(table[1]["accuracy"])


def test_a_real_sweep_of_two_smoke_runs(data_dir, tmp_path):
  """Two LeNet-5 runs of 2 steps through the real in-process runner; a rerun runs nothing."""
  workdir = str(tmp_path / "sweep")
  search.run_sweep(_smoke_spec(data_dir, 2), workdir, trials.InProcessRunner(), log=lambda line: None)
  _check_real_table(workdir, 2)
  never = FakeRunner()
  assert len(search.run_sweep(_smoke_spec(data_dir, 2), workdir, never, log=lambda line: None)) == 2
  assert never.calls == []


@pytest.mark.slow
def test_the_command_line_with_the_subprocess_runner(data_dir, tmp_path):
  """The same sweep from the command line, one `python -m vision_jax.main` per trial, and its printed table."""
  workdir = str(tmp_path / "sweep")
  out = _cli(f"--config={CONFIG}:smoke", f"--workdir={workdir}", "--search=grid",
             "--space=optimizer.learning_rate=choice(0.003, 0.0003)", f"--config.dataset.data_dir={data_dir}",
             "--config.num_train_steps=2")
  assert out.returncode == 0, out.stderr[-2000:]
  _check_real_table(workdir, 2)
  assert "2 trials of grid search, sorted by accuracy (max):" in out.stdout
  header = out.stdout.split("(max):\n")[1].splitlines()[0].split()
  assert header[:5] == ["rank", "trial", "optimizer.learning_rate", "accuracy", "best_accuracy"]
