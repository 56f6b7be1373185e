"""Kill loop (issue 14 acceptance; run by hand, not collected by pytest): SIGKILL training runs at random moments
(start-up, mid-step, mid-save, wrap-up), rerun each to completion and check that nothing was lost.

    python -m tests.training.kill_loop --kills=30 --workdir=/tmp/kill_loop [--steps=40] [--seed=0] [--rekill=0.3]

An uninterrupted reference run is trained first and timed (T seconds, start-up included). Then, until `--kills`
kills were made: a fresh workdir is trained and SIGKILLed after a delay drawn uniformly from [0, 1.1 T]; each
rerun is SIGKILLed again with probability `--rekill` (a kill during a resume), else it runs to the end. Every
completed workdir must hold results identical to the reference: exit status 0, every array of the final checkpoint
bit-identical, summary.json's final_eval equal, and metrics.csv's eval and train rows equal (throughput and
learning rate aside); no orbax temporary directory may remain and no checkpoint may have been set aside as
corrupt. Prints one line per run and a final count.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _command(workdir: str, steps: int) -> list[str]:
  return [sys.executable, "-m", "vision_jax.main", "--config=configs/mnist_lenet.py:smoke", f"--workdir={workdir}",
          f"--config.num_train_steps={steps}", "--config.checkpoint.every_steps=1", "--config.eval_every_steps=10",
          "--config.log_every_steps=1", "--config.input.eval_batch_size=500"]


def _env(data_dir: str) -> dict[str, str]:
  return dict(os.environ, JAX_PLATFORMS="cpu", TFDS_DATA_DIR=data_dir, PYTHONUNBUFFERED="1")


def _start(workdir: str, steps: int, data_dir: str, log) -> subprocess.Popen:
  return subprocess.Popen(_command(workdir, steps), cwd=REPO, env=_env(data_dir), stdout=log, stderr=subprocess.STDOUT)


def _results(workdir: str) -> dict:
  """What must not differ from the reference: final arrays, final_eval, learning rows of metrics.csv."""
  import json  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  from vision_jax.train_lib import checkpoint, writers  # pylint: disable=import-outside-toplevel
  state = checkpoint.load_state_arrays(workdir)
  with open(os.path.join(workdir, "summary.json")) as f:
    final_eval = json.load(f)["final_eval"]
  table = writers.read_csv(os.path.join(workdir, "metrics.csv"))
  rows = {(split, metric): values for split, metrics in table.items() for metric, values in metrics.items()
          if metric != "learning_rate" and not metric.endswith("_per_sec")}
  return {"arrays": [np.asarray(x) for x in jax.tree.leaves(state)], "final_eval": final_eval, "rows": rows}


def _differences(found: dict, reference: dict) -> list[str]:
  out = []
  if len(found["arrays"]) != len(reference["arrays"]) or not all(
      a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
      for a, b in zip(found["arrays"], reference["arrays"])):
    out.append("final checkpoint arrays differ")
  if found["final_eval"] != reference["final_eval"]:
    out.append(f"final_eval {found['final_eval']} != {reference['final_eval']}")
  if found["rows"] != reference["rows"]:
    out.append(f"metrics.csv rows differ: {sorted(set(found['rows'].items()) ^ set(reference['rows'].items()))[:2]}")
  return out


def _leftovers(workdir: str) -> list[str]:
  out = []
  for root, dirs, _ in os.walk(workdir):
    out += [os.path.join(root, d) for d in dirs if "orbax-checkpoint-tmp" in d]
  if os.path.isdir(os.path.join(workdir, "corrupt")):
    out.append(os.path.join(workdir, "corrupt"))
  return out


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--kills", type=int, default=30)
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--rekill", type=float, default=0.3, help="probability of killing a rerun again")
  parser.add_argument("--workdir", default="/tmp/kill_loop")
  parser.add_argument("--data_dir", default="", help="TFDS data dir with the embedded MNIST (default: prepared)")
  args = parser.parse_args()
  rng = random.Random(args.seed)
  shutil.rmtree(args.workdir, ignore_errors=True)
  os.makedirs(args.workdir)
  data_dir = args.data_dir or os.path.join(args.workdir, "tfds")
  if not args.data_dir:
    from vision_jax.data import embedded_mnist  # pylint: disable=import-outside-toplevel
    embedded_mnist.prepare(data_dir)
  log = open(os.path.join(args.workdir, "runs.log"), "ab")

  reference_dir = os.path.join(args.workdir, "reference")
  t0 = time.time()
  code = _start(reference_dir, args.steps, data_dir, log).wait()
  wall = time.time() - t0
  assert code == 0, f"reference run failed ({code}); see {args.workdir}/runs.log"
  reference = _results(reference_dir)
  print(f"reference: {args.steps} steps in {wall:.1f} s; kills drawn from [0, {1.1 * wall:.1f}] s", flush=True)

  kills = killed_early = resumes = clean = identical = 0
  problems: list[str] = []
  trial = 0
  while kills < args.kills:
    workdir = os.path.join(args.workdir, f"run_{trial:03d}")
    chain = []
    kill_next = True
    while True:
      proc = _start(workdir, args.steps, data_dir, log)
      if kill_next:
        delay = rng.uniform(0.0, 1.1 * wall)
        try:
          code = proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
          proc.send_signal(signal.SIGKILL)
          code = proc.wait()
        if code == -signal.SIGKILL:
          kills += 1
          chain.append(f"kill@{delay:.1f}s")
          kill_next = rng.random() < args.rekill
          continue
        killed_early += 1  # finished before the kill: the run is complete (a later start must keep it)
        chain.append(f"done-before-kill@{delay:.1f}s")
      else:
        code = proc.wait()
        resumes += 1
        chain.append("resume")
      if code != 0:
        problems.append(f"{workdir}: exit status {code}")
        break
      clean += 1 if chain[-1] == "resume" else 0
      found_problems = _differences(_results(workdir), reference) + [f"left {p}" for p in _leftovers(workdir)]
      problems += [f"{workdir}: {p}" for p in found_problems]
      identical += not found_problems
      break
    verdict = "PROBLEM" if any(p.startswith(workdir + ":") for p in problems) else "identical"
    print(f"{os.path.basename(workdir)}: {' -> '.join(chain)}: {verdict}", flush=True)
    trial += 1
  print(f"{kills} SIGKILLs over {trial} workdirs ({killed_early} runs finished before their kill); "
        f"{clean} of {resumes} final resumes exited 0; {identical} of {trial} workdirs identical to the reference")
  for problem in problems:
    print("problem:", problem)
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main())
