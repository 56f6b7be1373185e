"""SIGKILL at chosen points of a real `python -m vision_jax.main` run (start-up, mid-step, mid-save, between the
final checkpoint and summary.json) and two runs started at once into one workdir (issue 14). After each, a rerun
of the same command must give results bit-identical to an uninterrupted run. All slow: a subprocess each (the
CI subset covers the same guarantees in process in test_faults.py; `kill_loop.py` draws random kill times)."""

import os
import signal
import subprocess
import time

import pytest

from tests.training import harness
from tests.training.test_faults import STEPS, assert_identical, trained_reference
from vision_jax.train_lib import writers

pytestmark = pytest.mark.slow
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = ["--config=configs/mnist_lenet.py:smoke", f"--config.num_train_steps={STEPS}",
        "--config.checkpoint.every_steps=1", "--config.log_every_steps=1", f"--config.eval_every_steps={STEPS}",
        "--config.input.eval_batch_size=500"]


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
  return trained_reference(data_dir, tmp_path_factory)  # the same config in process: results must not differ


def _start(data_dir, workdir):
  return subprocess.Popen(harness.main_cmd(*ARGS, f"--workdir={workdir}"), cwd=REPO, env=harness.env(data_dir),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _entries(workdir):
  path = os.path.join(workdir, "checkpoints")
  return os.listdir(path) if os.path.isdir(path) else []


KILL_POINTS = {
    "start-up": lambda workdir, started: time.time() - started > 1.0,
    "mid-step": lambda workdir, started: "2" in _entries(workdir),
    "mid-save": lambda workdir, started: any("orbax-checkpoint-tmp" in e for e in _entries(workdir)),
    "after the final checkpoint, before summary.json":
        lambda workdir, started: str(STEPS) in _entries(workdir) and not os.path.exists(
            os.path.join(workdir, "summary.json")),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_each_point_then_rerun_is_identical(reference, data_dir, tmp_path, point):
  workdir = str(tmp_path / "run")
  proc, started = _start(data_dir, workdir), time.time()
  while proc.poll() is None and not KILL_POINTS[point](workdir, started):
    time.sleep(0.002)
  proc.send_signal(signal.SIGKILL)
  proc.communicate(timeout=60)
  assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill point {point!r}"
  rerun = _start(data_dir, workdir)
  out, err = rerun.communicate(timeout=600)
  assert rerun.returncode == 0, err[-3000:]
  assert_identical(workdir, reference)
  history = writers.read_csv(os.path.join(workdir, "metrics.csv"))
  assert [s for s, _ in history["eval"]["accuracy"]] == [STEPS]
  assert [s for s, _ in history["train"]["loss"]] == list(range(1, STEPS + 1))
  assert not [e for e in _entries(workdir) if "tmp" in e]


def test_two_runs_at_once_one_is_refused_the_other_completes(reference, data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  first, second = _start(data_dir, workdir), _start(data_dir, workdir)
  results = [(p.returncode, out, err) for p in (first, second) for out, err in [p.communicate(timeout=600)]]
  codes = sorted(code for code, _, _ in results)
  assert codes == [0, 2], [r[2][-2000:] for r in results]
  refused = next(err for code, _, err in results if code == 2)
  lines = [line for line in refused.splitlines() if line.strip() and not line.startswith(("W", "I"))]
  assert len(lines) == 1 and lines[0].startswith("error: another run (pid ") and "another --workdir" in lines[0]
  assert_identical(workdir, reference)
