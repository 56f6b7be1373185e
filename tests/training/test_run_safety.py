"""A workdir serves one live run at a time, a killed run does not leave it locked, and a non-finite train state
is never checkpointed."""

import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import train
from vision_jax.configs import mnist_lenet
from vision_jax.errors import ConfigError, TrainingDivergedError
from vision_jax.train_lib import run_lock, setup as setup_lib
from vision_jax.train_lib.checkpoint import load_state_arrays


def _config(data_dir, steps):
  config = mnist_lenet.get_config("smoke")
  config.dataset.data_dir = data_dir
  config.num_train_steps = steps
  config.checkpoint.every_steps = config.log_every_steps = 1
  return config


def test_a_second_run_in_a_busy_workdir_is_refused(data_dir, tmp_path):
  with run_lock.held(str(tmp_path)):
    with pytest.raises(ConfigError, match=rf"another run \(pid {os.getpid()}\) is using .*another --workdir"):
      train.train_and_evaluate(_config(data_dir, 2), str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()  # refused before touching anything
  train.train_and_evaluate(_config(data_dir, 2), str(tmp_path))  # free again once the holder is gone


def test_a_killed_holder_leaves_no_stuck_lock(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", (
      "import sys, time; from vision_jax.train_lib import run_lock\n"
      f"with run_lock.held({str(tmp_path)!r}):\n  print('held', flush=True); time.sleep(60)")],
      stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == "held"
  with pytest.raises(ConfigError, match=rf"another run \(pid {holder.pid}\)"):
    with run_lock.held(str(tmp_path)):
      pass
  holder.send_signal(signal.SIGKILL)
  holder.wait(timeout=30)
  deadline = time.time() + 10
  while True:
    try:
      with run_lock.held(str(tmp_path)):
        break
    except ConfigError:
      assert time.time() < deadline
      time.sleep(0.1)


def test_a_non_finite_update_is_never_checkpointed(data_dir, tmp_path, monkeypatch):
  compile_real = setup_lib.compile_train_step

  def overflowing_at_step_2(s):
    real = compile_real(s)

    def step(state, batch):
      state, metrics = real(state, batch)  # the loss stays finite; the update that step 2 applies overflows
      poison = jnp.where(state.step == 2, jnp.inf, 0.0)
      params = jax.tree.map(lambda p: p + poison, state.params)
      return state.replace(params=params), metrics

    return step

  monkeypatch.setattr(setup_lib, "compile_train_step", overflowing_at_step_2)
  with pytest.raises(TrainingDivergedError, match="train state became non-finite by step 2"):
    train.train_and_evaluate(_config(data_dir, 4), str(tmp_path))
  steps = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit())
  assert steps == [1]
  saved = load_state_arrays(str(tmp_path))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(saved["params"]))
