"""A save that meets the previous save's clean-up still deleting the oldest step (orbax's finalize thread)."""

import os
import shutil
import time

import jax.numpy as jnp
import pytest

from vision_jax.train_lib import checkpoint


def test_save_waits_for_the_previous_clean_up_before_checking_step_directories(tmp_path):
  state = {"w": jnp.arange(3.0)}
  identity = checkpoint.run_identity("classification", "toy", {}, state)
  saver = checkpoint.Checkpointer(str(tmp_path), identity, keep=1, async_save=True)
  deleter = getattr(saver.latest, "_checkpoint_deleter", None)
  if deleter is None or not hasattr(deleter, "delete_steps"):
    pytest.skip("this orbax deletes old steps elsewhere")
  real_delete = deleter.delete_steps
  step_one = tmp_path / "checkpoints" / "1"

  def slow_delete(steps):  # empties each step first, like a recursive delete caught half-way
    for step in steps:
      for entry in (tmp_path / "checkpoints" / str(step)).iterdir():
        if entry.is_dir():
          shutil.rmtree(entry)
        else:
          entry.unlink()
    if steps:
      time.sleep(2.0)
    real_delete(steps)

  deleter.delete_steps = slow_delete
  saver.save(1, state, {"step": 1})
  saver.save(2, state, {"step": 2})  # its finalize thread deletes step 1, slowly
  deadline = time.time() + 60
  while not (step_one.is_dir() and not os.listdir(step_one)) and time.time() < deadline:
    time.sleep(0.01)
  assert step_one.is_dir() and not os.listdir(step_one), "step 1 was never caught half-deleted"
  saver.save(3, state, {"step": 3})  # took step 1's emptied directory for a stranger's before the fix
  saver.wait()
  assert saver.latest.all_steps() == [3]
