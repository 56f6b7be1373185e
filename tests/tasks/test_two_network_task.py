"""A task with two networks and two optimizers (`toy_gan`) through the one loop: a run through
`python -m vision_jax.main`, critic and generator steps that leave the other network bit-identical, and a
bit-identical resume after SIGKILL."""

import json
import os
import signal
import subprocess
import time

import jax
import numpy as np
import optax
import pytest
from PIL import Image

import tests.tasks.toy_tasks  # noqa: F401  (registers toy_gan)
from tests.tasks import in_process
from tests.training import harness
from vision_jax.train_lib import setup as setup_lib
from vision_jax.train_lib.checkpoint import load_state_arrays

CONFIG = "tests/tasks/configs/toy_gan.py:smoke,n_critic=2"
STEPS = 40


def _cmd(workdir, *flags):
  return harness.main_cmd(f"--config={CONFIG}", f"--workdir={workdir}", *flags)


def _run(data_dir, workdir, *flags) -> subprocess.CompletedProcess:
  result = subprocess.run(_cmd(workdir, *flags), cwd=in_process.REPO, env=in_process.subprocess_env(data_dir),
                          capture_output=True, text=True, timeout=240)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def test_trains_through_main_and_writes_summary_and_samples(data_dir, tmp_path):
  workdir = tmp_path / "run"
  result = _run(data_dir, workdir)
  assert "done: 20 steps (completed)" in result.stdout
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["task"] == "toy_gan" and summary["throughput_unit"] == "images"
  assert summary["train_images_per_sec"] > 0
  final = summary["final_eval"]
  assert final["num_examples"] == 64
  assert {"real_score", "fake_score", "wasserstein_estimate", "mean_image_distance"} <= set(final)
  assert final["wasserstein_estimate"] == pytest.approx(final["real_score"] - final["fake_score"])
  with Image.open(workdir / "samples.png") as grid:  # 16 samples of 28x28 in a 4x4 grid with 1 px gaps
    assert grid.size == (4 * 29 - 1, 4 * 29 - 1) and grid.mode == "L"
  assert summary["samples_png"] == str(workdir / "samples.png")


def _holds(opt_state, kind) -> bool:
  """Whether an optimizer state contains a state of type `kind`."""
  return any(isinstance(x, kind) for x in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, kind)))


def _leaves_equal(a, b) -> bool:
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_each_step_updates_one_network_and_leaves_the_other_bit_identical(data_dir, tmp_path):
  config = in_process.load_config(CONFIG, data_dir, input__batch_size=8)
  s = setup_lib.setup(config, str(tmp_path))
  # Two optimizers: Adam (b1 0.5) for the generator, RMSprop without momentum for the critic.
  assert config.optimizer.name == "adam" and config.optimizers.critic.name == "rmsprop"
  state = s.init_state()
  assert _holds(state.opt_state["generator"], optax.ScaleByAdamState)
  assert _holds(state.opt_state["critic"], optax.ScaleByRmsState)
  assert not _holds(state.opt_state["critic"], optax.ScaleByAdamState)
  step_fn, batches, clip = in_process.compile_train_step(s), in_process.train_batches(s), config.gan.clip
  kinds = []
  for _ in range(6):
    before = in_process.host_copy(state)
    state, metrics = step_fn(state, next(batches))
    after = jax.device_get(state)
    critic_step = bool(metrics["critic_step"])
    kinds.append("critic" if critic_step else "generator")
    updated, kept = ("critic", "generator") if critic_step else ("generator", "critic")
    in_process.assert_trees_equal(after.params[kept], before.params[kept])
    in_process.assert_trees_equal(after.opt_state[kept], before.opt_state[kept])
    assert not _leaves_equal(after.params[updated], before.params[updated])
    assert not _leaves_equal(after.opt_state[updated], before.opt_state[updated])
    assert max(float(np.abs(p).max()) for p in jax.tree.leaves(after.params["critic"])) <= clip
  assert kinds == ["critic", "critic", "generator"] * 2  # n_critic=2, chosen by state.step inside one compiled step


def _newest_checkpoint(workdir) -> int:
  directory = os.path.join(workdir, "checkpoints")
  steps = [int(d) for d in os.listdir(directory) if d.isdigit()] if os.path.isdir(directory) else []
  return max(steps, default=0)


def test_sigkill_then_resume_is_bit_identical(data_dir, tmp_path):
  steps = [f"--config.num_train_steps={STEPS}", "--config.eval_every_steps=20"]
  reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
  _run(data_dir, reference, *steps)

  proc = subprocess.Popen(_cmd(killed, *steps, "--config.checkpoint.every_steps=1"), cwd=in_process.REPO,
                          env=in_process.subprocess_env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 180
  while _newest_checkpoint(killed) < 3 and proc.poll() is None and time.time() < deadline:
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait(timeout=60) == -signal.SIGKILL
  killed_at = _newest_checkpoint(killed)
  assert 3 <= killed_at < STEPS, f"the run was not killed mid-run (newest checkpoint {killed_at})"

  assert "resumed from" in _run(data_dir, killed, *steps, "--config.checkpoint.every_steps=1").stdout
  final, want = load_state_arrays(killed), load_state_arrays(reference)
  assert int(final["step"]) == int(want["step"]) == STEPS
  in_process.assert_trees_equal(final, want)
