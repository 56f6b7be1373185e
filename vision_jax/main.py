"""Command-line entry point: `python -m vision_jax.main --config=configs/x.py[:args] --workdir=DIR`.

Parses flags, starts multi-host JAX when asked, and calls the train loop, the evaluation or prediction.
Mistakes a user can fix (`vision_jax.errors.UserError`) end the run with one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from vision_jax import config_loading
from vision_jax.errors import UserError

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
      shown = " ".join(f"{k} {v:.4f}" for k, v in final.items() if k != "num_examples")
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


def main(argv) -> None:
  """absl main: runs the chosen mode; a UserError becomes one line on stderr and exit status 2."""
  logging.set_verbosity(logging.WARNING)  # orbax and TFDS are chatty at INFO
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  tfds.disable_progress_bar()
  try:
    _run(argv)
  except UserError as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)
  except KeyboardInterrupt:  # the second Ctrl-C (the first one saves and stops between steps)
    sys.stderr.write("error: interrupted twice; stopped without saving (the previous checkpoint is kept)\n")
    sys.exit(130)


_OVERRIDES: list[tuple[str, str]] = []


_flags_parser = config_loading.flags_parser(_OVERRIDES)  # parses flags, config overrides apart


def run_main() -> None:
  """Console-script entry point."""
  app.run(main, flags_parser=_flags_parser)


if __name__ == "__main__":
  run_main()
