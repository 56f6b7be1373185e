"""Command-line entry point: `python -m vision_jax.main --config=configs/x.py[:args] --workdir=DIR`.

Parses flags, starts multi-host JAX when asked, and calls the train loop, the evaluation or prediction.
Mistakes a user can fix (`vision_jax.errors.UserError`) end the run with one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from vision_jax.errors import UserError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, optionally with ':key=value,...' arguments "
    "(default: the packaged configs/mnist_lenet.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory for checkpoints, metrics and plots "
                               "(default: runs/<config name>).")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "predict"], "What to do.")
_IMAGES = flags.DEFINE_list("images", [], "Image files (PNG/JPEG) for --mode=predict.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", "", "host:port of process 0 for multi-process runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Number of processes (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process's index (with --coordinator_address).")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Initialize jax.distributed with cluster auto-detection "
                               "(Cloud TPU pod slices, SLURM).")


def _default_config_path() -> str:
  import vision_jax.configs  # pylint: disable=import-outside-toplevel
  return os.path.join(os.path.dirname(vision_jax.configs.__file__), "mnist_lenet.py")


def _run(argv) -> None:
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {argv[1:]}; flags look like --name=value")
  from vision_jax import parallel  # pylint: disable=import-outside-toplevel
  parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _MULTIHOST.value)
  import jax  # pylint: disable=import-outside-toplevel
  from vision_jax import train  # pylint: disable=import-outside-toplevel

  config = _CONFIG.value
  config_path = flags.FLAGS["config"].config_filename or _default_config_path()
  name = os.path.splitext(os.path.basename(config_path))[0]
  workdir = _WORKDIR.value or os.path.join("runs", name)
  chief = jax.process_index() == 0
  if _MODE.value == "train":
    summary = train.train_and_evaluate(config, workdir)
    if chief:
      final = summary["final_eval"]
      shown = " ".join(f"{k} {v:.4f}" for k, v in final.items() if k != "num_examples")
      print(f"done: {summary['steps']} steps ({summary['stop_reason']}) in {summary['wall_time_sec']:.1f} s, "
            f"{summary['train_images_per_sec']:,.0f} train images/s; final eval: {shown}; "
            f"outputs in {workdir}")
  elif _MODE.value == "eval":
    metrics = train.evaluate(config, workdir)
    if chief:
      shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k not in ("confusion", "num_examples", "step"))
      print(f"eval of step {metrics['step']} on {metrics['num_examples']} examples: {shown}")
  else:
    from vision_jax import predict  # pylint: disable=import-outside-toplevel
    for result in predict.predict(config, workdir, _IMAGES.value):
      if chief:
        top = ", ".join(f"{name} {p:.3f}" for name, p in result["top_k"])
        print(f"{result['path']}: {top}")


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


def _flags_parser(argv):
  """Parses flags; a bad flag, config file or override is one line on stderr and exit status 2."""
  if not any(a == "--config" or a.startswith("--config=") for a in argv[1:]):
    argv = [argv[0], f"--config={_default_config_path()}"] + list(argv[1:])
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.stderr.write(f"error: {str(e).splitlines()[0] if str(e) else e!r}\n")
    sys.exit(2)
  except UserError as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)


def run_main() -> None:
  """Console-script entry point."""
  app.run(main, flags_parser=_flags_parser)


if __name__ == "__main__":
  run_main()
