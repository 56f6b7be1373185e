"""Command-line entry point: `python -m vision_jax.main --config=configs/x.py[:args] --workdir=DIR`.

Parses flags, starts multi-host JAX when asked, and calls the train loop, the evaluation or prediction.
Mistakes a user can fix (`vision_jax.errors.UserError`) end the run with one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys

import numpy as np
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
  import vision_jax.configs  # pylint: disable=import-outside-toplevel
  return os.path.join(os.path.dirname(vision_jax.configs.__file__), "mnist_lenet.py")


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
  if _MODE.value == "train":
    summary = train.train_and_evaluate(config, workdir)
    if chief:
      final = summary["final_eval"]
      shown = " ".join(f"{k} {v:.4f}" for k, v in final.items() if k != "num_examples")
      print(f"done: {summary['steps']} steps ({summary['stop_reason']}) in {summary['wall_time_sec']:.1f} s, "
            f"{summary['train_images_per_sec']:,.0f} train images/s; final eval: {shown}; "
            f"outputs in {workdir}")
  elif _MODE.value == "eval":
    _evaluate(config, workdir, chief)
  else:
    from vision_jax import predict
    for result in predict.predict(config, workdir, _IMAGES.value):
      if chief:
        top = ", ".join(f"{name} {p:.3f}" for name, p in result["top_k"])
        print(f"{result['path']}: {top}")


def _load_config(spec: str):
  config = config_loading.load_config(spec)
  for key, value in _OVERRIDES:
    config_loading.apply_override(config, key, value)
  config.lock()
  return config


def _evaluate(config, workdir: str, chief: bool) -> None:
  """--mode=eval: one run or an ensemble, with the TTA of config.eval; writes eval.json, misclassified.png."""
  from vision_jax.evaluation import classification, ensemble  # pylint: disable=import-outside-toplevel
  members = [(config, workdir)]
  for text in _ENSEMBLE.value:
    member_dir, _, spec = text.partition("@")
    members.append((_load_config(spec) if spec else config, member_dir))
  result = ensemble.evaluate(members)
  if not chief:
    return
  metrics = result.metrics
  shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if np.ndim(v) == 0 and k != "num_examples")
  for member in result.members:
    print(f"{member['workdir']} (step {member['step']}, tta {member['tta']}): accuracy {member['accuracy']:.4f}")
  what = f"ensemble of {len(members)} runs" if len(members) > 1 else f"eval of step {result.members[0]['step']}"
  print(classification.format_per_class(classification.per_class_report(metrics, result.setup.eval_spec.class_names)))
  print(f"{what} on {metrics['num_examples']} examples: {shown}")
  print(f"wrote {', '.join(ensemble.write_outputs(result, workdir))}")


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


_OVERRIDES: list[tuple[str, str]] = []


_flags_parser = config_loading.flags_parser(_OVERRIDES)  # parses flags, config overrides apart


def run_main() -> None:
  """Console-script entry point."""
  app.run(main, flags_parser=_flags_parser)


if __name__ == "__main__":
  run_main()
