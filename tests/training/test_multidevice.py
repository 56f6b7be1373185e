"""Same seed, 50 steps: 1 device, 8 fake CPU devices and 2 processes x 4 devices give the same parameters."""

import os
import subprocess
import sys

import pytest

from tests.training import harness

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = ["--config=configs/mnist_lenet.py:smoke", "--config.num_train_steps=50", "--config.checkpoint.every_steps=50",
        "--config.eval_every_steps=50", "--config.log_every_steps=25"]
# Float32 summation order differs between layouts, and 50 Adam steps amplify it: measured 3e-6 to 1.3e-5 as the
# train step's gradient forms changed (the patch input gradient of LeNet's second conv moved 2 processes from
# 8.7e-6 to 1.3e-5). The bound leaves room for rounding order only.
TOLERANCE = 5e-5


def _train(data_dir, workdir, devices):
  result = subprocess.run(harness.main_cmd(*ARGS, f"--workdir={workdir}"), cwd=REPO,
                          env=harness.env(data_dir, devices), capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return harness.final_params(workdir)["params"]


@pytest.mark.multiprocess
def test_devices_and_processes_agree(data_dir, tmp_path):
  one = _train(data_dir, tmp_path / "one", 1)
  eight = _train(data_dir, tmp_path / "eight", 8)
  env = harness.env(data_dir, 1)
  env.update(DEVICES_PER_PROCESS="4", PORT=str(harness.free_port()), PYTHON=sys.executable)
  result = subprocess.run(["bash", "launch/local_cpu.sh", "2", *ARGS, f"--workdir={tmp_path / 'two_procs'}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "devices" in open(tmp_path / "two_procs" / "summary.json").read()
  two_procs = harness.final_params(tmp_path / "two_procs")["params"]
  eight_vs_one = harness.max_relative_difference(eight, one)
  procs_vs_one = harness.max_relative_difference(two_procs, one)
  print(f"max relative parameter difference after 50 steps: 8 devices vs 1: {eight_vs_one:.3g}; "
        f"2 processes x 4 devices vs 1: {procs_vs_one:.3g}")
  assert eight_vs_one <= TOLERANCE and procs_vs_one <= TOLERANCE
