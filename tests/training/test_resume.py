"""Resumption: SIGKILL at a random step, SIGTERM, a corrupt newest checkpoint, a non-finite loss."""

import os
import random
import shutil
import signal
import subprocess

import numpy as np
import pytest

from tests.training import harness

STEPS = 30
ARGS = ["--config=configs/mnist_lenet.py:smoke", f"--config.num_train_steps={STEPS}",
        "--config.checkpoint.every_steps=5", "--config.eval_every_steps=15", *harness.TINY]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("uninterrupted"))
  result = subprocess.run(harness.main_cmd(*ARGS, f"--workdir={workdir}"), cwd=REPO, env=harness.env(data_dir),
                          capture_output=True, text=True, timeout=240)
  assert result.returncode == 0, result.stderr[-2000:]
  return harness.final_params(workdir)


def _run_until(data_dir, workdir, kill_after_step, sig):
  """Starts training and sends `sig` once the log shows step `kill_after_step`; returns (exit code, stdout)."""
  proc = subprocess.Popen(harness.main_cmd(*ARGS, f"--workdir={workdir}"), cwd=REPO, env=harness.env(data_dir),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  lines = []
  for line in proc.stdout:
    lines.append(line)
    if f"train step {kill_after_step}/" in line:
      proc.send_signal(sig)
      break
  rest, _ = proc.communicate(timeout=120)
  return proc.returncode, "".join(lines) + (rest or "")


def _resume(data_dir, workdir):
  result = subprocess.run(harness.main_cmd(*ARGS, f"--workdir={workdir}"), cwd=REPO, env=harness.env(data_dir),
                          capture_output=True, text=True, timeout=240)
  assert result.returncode == 0, result.stderr[-2000:]
  return result


def _assert_identical(a, b):
  import jax  # pylint: disable=import-outside-toplevel
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


_RNG = random.Random(0)
KILL_POINTS = [_RNG.randrange(6, STEPS - 2) for _ in range(8)]  # random steps, fixed across runs


@pytest.mark.parametrize("kill_at", [*KILL_POINTS[:2], *(pytest.param(k, marks=pytest.mark.slow) for k in KILL_POINTS[2:])])
def test_sigkill_then_resume_is_bit_identical(reference, data_dir, tmp_path, kill_at):
  code, _ = _run_until(data_dir, str(tmp_path), kill_at, signal.SIGKILL)
  assert code == -signal.SIGKILL
  result = _resume(data_dir, str(tmp_path))
  assert "resumed from" in result.stdout
  _assert_identical(harness.final_params(str(tmp_path)), reference)


def test_sigterm_saves_and_exits_cleanly_then_resumes(reference, data_dir, tmp_path):
  code, out = _run_until(data_dir, str(tmp_path), 12, signal.SIGTERM)
  assert code == 0, out[-2000:]
  assert "SIGTERM received: saved a checkpoint at step" in out
  saved = int(harness.final_params(str(tmp_path))["step"])
  assert 12 <= saved < STEPS, (sorted(os.listdir(tmp_path / "checkpoints")), out[-3000:])
  _resume(data_dir, str(tmp_path))
  _assert_identical(harness.final_params(str(tmp_path)), reference)


def test_corrupt_newest_checkpoint_is_skipped(reference, data_dir, tmp_path):
  workdir = str(tmp_path)
  code, _ = _run_until(data_dir, workdir, 17, signal.SIGKILL)
  assert code == -signal.SIGKILL
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
  newest = os.path.join(workdir, "checkpoints", str(steps[-1]), "state")
  for root, _, files in os.walk(newest):  # truncate every array file of the newest checkpoint
    for name in files:
      if "manifest" in name or root != newest:
        open(os.path.join(root, name), "wb").close()
  result = _resume(data_dir, workdir)
  assert "checkpoint" in result.stderr and "trying the previous one" in result.stderr
  _assert_identical(harness.final_params(workdir), reference)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
  workdir = str(tmp_path)
  # lr 1e3 with plain SGD diverges within a few steps; checkpoints every 2 steps.
  result = harness.run_main(data_dir, "--config=" + os.path.join(REPO, "configs/mnist_lenet.py:smoke"),
                            f"--workdir={workdir}", "--config.optimizer.name=sgd",
                            "--config.optimizer.learning_rate=1e6", "--config.schedule.name=constant",
                            "--config.checkpoint.every_steps=1", *harness.TINY)
  assert result.returncode == 2
  # whichever check fires first: the divergence guard (loss > 1e6 x the first) or the non-finite one
  assert result.stderr.strip().startswith(("error: the training loss became non-finite by step",
                                           "error: the training loss diverged to")), result.stderr
  assert "Traceback" not in result.stderr
  if os.path.isdir(os.path.join(workdir, "checkpoints")):
    from vision_jax.train_lib.checkpoint import load_state_arrays  # pylint: disable=import-outside-toplevel
    import jax  # pylint: disable=import-outside-toplevel
    state = load_state_arrays(workdir)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))
  shutil.rmtree(workdir)
