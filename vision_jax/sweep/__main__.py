"""`python -m vision_jax.sweep`: hyper-parameter search from the command line (see `vision_jax.sweep`).

Flags: --config, --workdir, --search=grid|random|tpe, --trials, --space (repeat), --metric, --mode=max|min,
--seed, --grid_points, --runner=subprocess|inprocess, --retry_failed, and `--config.a.b=value` overrides fixed
for every trial. Mistakes print one `error:` line and exit with status 2; Ctrl-C (exit 130) or SIGTERM stops
after the running trial saved its checkpoint (a second Ctrl-C stops at once), and the same command resumes.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from vision_jax import config_loading
from vision_jax.errors import UserError
from vision_jax.sweep import results, search, space, trials

_CONFIG = flags.DEFINE_string("config", None, "Experiment config file with optional ':args', as for vision_jax.main.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Sweep directory (default: runs/sweep_<config name>).")
_SEARCH = flags.DEFINE_enum("search", "random", list(search.SEARCHES), "Search strategy (tpe needs optuna).")
_TRIALS = flags.DEFINE_integer("trials", 0, "Number of trials (grid: 0 runs every combination).")
_SPACE = flags.DEFINE_multi_string("space", [], "A searched value: key=choice(a, b) | uniform(lo, hi) | "
                                   "loguniform(lo, hi) | randint(lo, hi); repeat for more.")
_METRIC = flags.DEFINE_string("metric", "accuracy", "Final-evaluation metric that ranks the trials.")
_MODE = flags.DEFINE_enum("mode", "max", ["max", "min"], "Whether a larger or a smaller metric is better.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random and TPE searches (not of the runs: set --config.seed).")
_GRID_POINTS = flags.DEFINE_integer("grid_points", 3, "Grid values per continuous dimension.")
_RUNNER = flags.DEFINE_enum("runner", "subprocess", ["subprocess", "inprocess"],
                            "subprocess: one `python -m vision_jax.main` per trial; inprocess: no start-up cost.")
_RETRY_FAILED = flags.DEFINE_bool("retry_failed", False, "Rerun trials recorded as failed.")

_OVERRIDES: list[tuple[str, str]] = []


def _run(argv) -> None:
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {argv[1:]}; flags look like --name=value")
  if not _CONFIG.value:
    raise UserError("pass the experiment to search: --config=configs/<experiment>.py")
  spec = search.SweepSpec(config=_CONFIG.value, space=space.parse_space(_SPACE.value), fixed=list(_OVERRIDES),
                          search=_SEARCH.value, trials=_TRIALS.value, metric=_METRIC.value, mode=_MODE.value,
                          seed=_SEED.value, grid_points=_GRID_POINTS.value)
  name = os.path.splitext(os.path.basename(config_loading.split_path_and_arg(_CONFIG.value)[0]))[0]
  workdir = _WORKDIR.value or os.path.join("runs", f"sweep_{name}")
  runner = trials.SubprocessRunner() if _RUNNER.value == "subprocess" else trials.InProcessRunner()
  stop = trials.stop_on_signals(runner)
  rows = search.run_sweep(spec, workdir, runner, _RETRY_FAILED.value, log=lambda line: print(line, flush=True),
                          should_stop=lambda: bool(stop))
  print(f"\n{len(rows)} trials of {spec.search} search, sorted by {spec.metric} ({spec.mode}):")
  print(results.format_table(rows, search.columns(spec)))
  print(f"table in {os.path.join(workdir, search.RESULTS_FILE)}")
  if stop:
    print(f"stopped by {stop[0]}: the running trial saved a checkpoint; rerun the same command to resume")
    if stop[0] == "SIGINT":
      sys.exit(130)


def main(argv) -> None:
  """absl main: a UserError is one `error:` line and exit 2; Ctrl-C is a resumable stop (exit 130)."""
  logging.set_verbosity(logging.WARNING)
  try:
    _run(argv)
  except UserError as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)
  except KeyboardInterrupt:
    sys.stderr.write("interrupted twice: the running trial was stopped without saving (its previous checkpoint is "
                     "kept); rerun the same command to resume the sweep\n")
    sys.exit(130)


if __name__ == "__main__":
  app.run(main, flags_parser=config_loading.flags_parser(_OVERRIDES))
