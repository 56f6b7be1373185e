"""Command-line entry point: `python -m vision_jax.main --config=configs/x.py[:args] --workdir=DIR`.

Parses flags, starts multi-host JAX when asked, and calls the train loop, the evaluation or prediction.
Mistakes a user can fix (`vision_jax.errors.UserError`), OS errors of the user's environment (permissions, full
or read-only disks: `errors.os_error_line`) and a Ctrl-C outside the steps end the run with one `error:` line on
stderr and exit code 2.
"""

from __future__ import annotations

import logging as std_logging
import os
import sys

from absl import app, flags, logging

from vision_jax import config_loading
from vision_jax.errors import UserError, os_error_line

_CONFIG = flags.DEFINE_string(
    "config", None, "Experiment config file, optionally with ':key=value,...' arguments "
    "(default: the packaged configs/mnist_lenet.py). Override any value with --config.a.b=value.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory for checkpoints, metrics and plots "
                               "(default: runs/<config name>).")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "predict"], "What to do.")
_IMAGES = flags.DEFINE_list("images", [], "Image files (PNG/JPEG) for --mode=predict.")
_ENSEMBLE = flags.DEFINE_multi_string(
    "ensemble", [], "--mode=eval: another run to average with --workdir's, as DIR (same --config) or "
    "DIR@CONFIG[:args]; repeat the flag for more members. --config.* overrides apply to every member.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", "", "host:port of process 0 for multi-process runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Number of processes (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process's index (with --coordinator_address).")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Initialize jax.distributed with cluster auto-detection "
                               "(Cloud TPU pod slices, SLURM).")


def _default_config_path() -> str:
  return config_loading.packaged_config_path("mnist_lenet.py")


def _run(argv) -> None:
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {argv[1:]}; flags look like --name=value")
  if _ENSEMBLE.value and _MODE.value != "eval":
    raise UserError("--ensemble averages trained runs in --mode=eval; add --mode=eval or drop --ensemble")
  from vision_jax.train_lib import parallel
  parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _MULTIHOST.value)
  import jax  # pylint: disable=import-outside-toplevel
  from vision_jax import train

  config = _load_config(_CONFIG.value or _default_config_path())
  name = os.path.splitext(os.path.basename(config_loading.split_path_and_arg(_CONFIG.value or "mnist_lenet.py")[0]))[0]
  workdir = _WORKDIR.value or os.path.join("runs", name)
  chief = jax.process_index() == 0
  from vision_jax.tasks import input_problem  # pylint: disable=import-outside-toplevel
  if input_problem.is_input_problem(config.task):
    if _MODE.value != "train":
      raise UserError(f"task {config.task!r} optimises an image: it has only --mode=train; drop --mode")
    from vision_jax.train_lib import input_opt  # pylint: disable=import-outside-toplevel
    summary = input_opt.run(config, workdir)
    if chief:
      print(input_opt.summary_line(summary, workdir))
    return
  if _MODE.value == "train":
    summary = train.train_and_evaluate(config, workdir)
    if chief:
      final = summary["final_eval"]
      shown = (" ".join(f"{k} {v:.4f}" for k, v in final.items() if k != "num_examples")
               or "none yet (stopped before the first evaluation; rerun the same command to resume)")
      unit = summary.get("throughput_unit", "images")
      print(f"done: {summary['steps']} steps ({summary['stop_reason']}) in {summary['wall_time_sec']:.1f} s, "
            f"{summary.get(f'train_{unit}_per_sec', 0.0):,.0f} train {unit}/s; final eval: {shown}; "
            f"outputs in {workdir}")
    return
  lines = (train.eval_mode(config, workdir, [_member(text, config) for text in _ENSEMBLE.value])
           if _MODE.value == "eval" else train.predict_mode(config, workdir, _IMAGES.value))
  if chief:
    print("\n".join(lines))


def _member(text: str, config):
  """An --ensemble value DIR or DIR@CONFIG[:args] -> (config, workdir)."""
  member_dir, _, spec = text.partition("@")
  return (_load_config(spec) if spec else config), member_dir


def _load_config(spec: str):
  config = config_loading.load_config(spec)
  for key, value in _OVERRIDES:
    config_loading.apply_override(config, key, value)
  config.lock()
  return config


def _not_orbax_errors(record: std_logging.LogRecord) -> bool:
  return not (record.levelno >= std_logging.ERROR and f"{os.sep}orbax{os.sep}" in record.pathname)


def main(argv) -> None:
  """absl main: runs the chosen mode; a UserError becomes one line on stderr and exit status 2."""
  logging.set_verbosity(logging.WARNING)  # orbax and TFDS are chatty at INFO
  # orbax logs the traceback of a failed background write (e.g. a full disk) before re-raising it in the main
  # thread, where it becomes one `error:` line (or a traceback, if it is not the user's to fix)
  logging.get_absl_logger().addFilter(_not_orbax_errors)
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    tfds.disable_progress_bar()
    _run(argv)
  except UserError as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)
  except KeyboardInterrupt:  # Ctrl-C outside the steps (start-up, wrap-up) or a second one (the first saves)
    sys.stderr.write("error: interrupted; stopped without saving (the previous checkpoint, if any, is kept): rerun "
                     "the same command to resume\n")
    sys.exit(2)
  except Exception as e:  # pylint: disable=broad-except
    line = os_error_line(e)
    if line is None:
      raise
    sys.stderr.write(f"error: {line}\n")
    sys.stdout.flush()
    sys.stderr.flush()
    # A failed background write (full disk) leaves the storage library's callbacks pending; at a normal exit
    # they print tracebacks of its closed event loop after this line. Nothing is left to save: leave now.
    os._exit(2)  # pylint: disable=protected-access


_OVERRIDES: list[tuple[str, str]] = []


_flags_parser = config_loading.flags_parser(_OVERRIDES)  # parses flags, config overrides apart


def run_main() -> None:
  """Console-script entry point."""
  app.run(main, flags_parser=_flags_parser)


if __name__ == "__main__":
  run_main()
