"""The input-optimisation runner (`train_lib.input_opt`) on the `match_image` problem: convergence, losses against
NumPy, the files it writes, what a checkpoint holds, finished reruns, and SIGKILL/SIGTERM resumes through
`python -m vision_jax.main` that end bit-identical to an uninterrupted run."""

import json
import os
import signal
import subprocess
import time

import jax
import numpy as np
import pytest
from PIL import Image

from tests.training import harness
from vision_jax import config_loading
from vision_jax.data import embedded_mnist
from vision_jax.errors import CheckpointError
from vision_jax.tasks import input_problem
from vision_jax.train_lib import input_opt, writers
from vision_jax.train_lib.checkpoint import load_state_arrays

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "match_image.py")
STEPS = 30
# A checkpoint every 2 steps: the saves pace the run (tens of ms each), so a signal sent at step 8-10 lands mid-run.
OVERRIDES = {"num_train_steps": STEPS, "optimizer.learning_rate": 0.1, "checkpoint.every_steps": 2,
             "checkpoint.keep": 2, "log_every_steps": 1, "render_every": 10}
ARGS = [f"--config={CONFIG}", *(f"--config.{k}={v}" for k, v in OVERRIDES.items())]


def _config(arg: str = "", **overrides):
  config = config_loading.load_config(f"{CONFIG}:{arg}")
  for key, value in {**OVERRIDES, **overrides}.items():
    config_loading.apply_override(config, key, str(value))
  return config


def _target() -> np.ndarray:
  images, _ = embedded_mnist.load_arrays()
  return images[0].astype(np.float64) / 255.0  # configs/match_image.py's default digit, [28, 28]


def _png(path: str, factor: int = 4) -> np.ndarray:
  """A PNG written `factor` times enlarged, back at its own size ([H, W] uint8)."""
  return np.asarray(Image.open(path))[::factor, ::factor]


def _numpy_tv(image: np.ndarray) -> float:
  x = image.astype(np.float64)
  return float(sum(abs(x[i + 1, j, c] - x[i, j, c]) for i in range(x.shape[0] - 1) for j in range(x.shape[1])
                   for c in range(x.shape[2]))
               + sum(abs(x[i, j + 1, c] - x[i, j, c]) for i in range(x.shape[0]) for j in range(x.shape[1] - 1)
                     for c in range(x.shape[2])))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted run in-process: (workdir, summary)."""
  workdir = str(tmp_path_factory.mktemp("uninterrupted"))
  return workdir, input_opt.run(_config(), workdir)


def test_total_variation_matches_numpy():
  images = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype(np.float32)
  got = np.asarray(input_problem.total_variation(images))
  np.testing.assert_allclose(got, [_numpy_tv(images[0]), _numpy_tv(images[1])], rtol=1e-5)


def test_match_image_loss_matches_numpy():
  problem = input_problem.get_problem(_config("tv=0.3"))
  image = np.random.default_rng(1).uniform(size=(1, 28, 28, 1)).astype(np.float32)
  loss, metrics = problem.loss(image, problem.constants(), jax.random.PRNGKey(0))
  mse = np.mean((image[0, ..., 0].astype(np.float64) - _target()) ** 2)
  tv = _numpy_tv(image[0]) / image.size
  np.testing.assert_allclose([float(metrics["mse"]), float(metrics["tv"]), float(loss)], [mse, tv, mse + 0.3 * tv],
                             rtol=1e-5)


def test_run_converges_to_the_target(reference):
  workdir, summary = reference
  assert summary["steps"] == STEPS and summary["stop_reason"] == "completed"
  final = load_state_arrays(workdir)["image"][0, ..., 0].astype(np.float64)
  initial = _png(os.path.join(workdir, "progress", "step_000000.png")) / 255.0  # the starting noise, 8-bit
  final_mse, initial_mse = np.mean((final - _target()) ** 2), np.mean((initial - _target()) ** 2)
  assert initial_mse > 0.2 and final_mse < 0.01 * initial_mse, (initial_mse, final_mse)
  assert summary["final_eval"]["mse"] == pytest.approx(final_mse, rel=1e-5)
  assert 0.0 <= final.min() and final.max() <= 1.0  # projected onto the pixel range
  on_disk = json.load(open(os.path.join(workdir, "summary.json")))
  assert on_disk["final_loss"] == pytest.approx(summary["final_loss"]) and on_disk["wall_time_sec"] > 0
  rows = open(os.path.join(workdir, "metrics.csv")).read().splitlines()
  assert sum(",train,mse," in r for r in rows) == STEPS and any(",train,learning_rate," in r for r in rows)


def test_pngs_show_the_image_and_its_progress(reference):
  workdir, _ = reference
  final = load_state_arrays(workdir)["image"][0, ..., 0]
  np.testing.assert_array_equal(_png(os.path.join(workdir, "image.png")), np.round(final * 255.0))
  np.testing.assert_array_equal(_png(os.path.join(workdir, "target.png")), embedded_mnist.load_arrays()[0][0])
  frames = sorted(os.listdir(os.path.join(workdir, "progress")))
  assert frames == [f"step_{s:06d}.png" for s in (0, 10, 20, 30)]
  assert Image.open(os.path.join(workdir, "progress.png")).size == (4 * 112 + 3 * 4, 112)
  assert os.path.getsize(os.path.join(workdir, "curves.png")) > 0


def test_constants_are_not_checkpointed(reference):
  workdir, _ = reference
  state = load_state_arrays(workdir)
  assert set(state) == {"step", "image", "opt_state", "rng"}
  target = _target().astype(np.float32)[None, :, :, None]
  assert not any(np.shape(leaf) == target.shape and np.allclose(leaf, target, atol=1e-3)
                 for leaf in jax.tree.leaves(state))


def test_rerun_of_a_finished_run_keeps_its_results(reference, capsys):
  workdir, summary = reference
  files = {name: open(os.path.join(workdir, name), "rb").read() for name in ("summary.json", "metrics.csv")}
  again = input_opt.run(_config(), workdir)
  assert again["already_finished"] and again["final_loss"] == pytest.approx(summary["final_loss"])
  assert "holds a finished run" in capsys.readouterr().out
  assert files == {name: open(os.path.join(workdir, name), "rb").read() for name in files}


def test_another_target_refuses_the_checkpoint(reference):
  with pytest.raises(CheckpointError, match="another run"):
    input_opt.run(_config("digit=1"), reference[0])


def _signal_after_checkpoint(workdir: str, step: int, sig: int, log_name: str) -> tuple[int, str]:
  """Runs `python -m vision_jax.main` in `workdir` and sends `sig` as soon as its step-`step` checkpoint is complete
  (orbax renames a finished save into checkpoints/<step>): (exit code, output)."""
  log_path = os.path.join(workdir, log_name)
  with open(log_path, "w") as log:
    proc = subprocess.Popen(harness.main_cmd(*ARGS, f"--workdir={workdir}"), cwd=REPO, env=harness.env(workdir),
                            stdout=log, stderr=subprocess.STDOUT)
    saved = os.path.join(workdir, "checkpoints", str(step))
    deadline = time.time() + 120
    while not os.path.isdir(saved) and proc.poll() is None and time.time() < deadline:
      time.sleep(0.005)
    proc.send_signal(sig)
    proc.wait(timeout=120)
  return proc.returncode, open(log_path).read()


def test_sigterm_and_sigkill_then_resume_is_bit_identical(reference, tmp_path):
  """SIGTERM saves and exits cleanly; the resumed run is then SIGKILLed (possibly mid-save); the second resume ends
  bit-identical (image and optimizer state) to the uninterrupted run."""
  workdir = str(tmp_path)
  code, out = _signal_after_checkpoint(workdir, 6, signal.SIGTERM, "first.log")
  assert code == 0 and "SIGTERM received: saved a checkpoint at step" in out, out[-2000:]
  assert 6 <= int(load_state_arrays(workdir)["step"]) < STEPS
  code, out = _signal_after_checkpoint(workdir, 16, signal.SIGKILL, "second.log")
  assert code == -signal.SIGKILL and "resumed from" in out, out[-2000:]
  result = subprocess.run(harness.main_cmd(*ARGS, f"--workdir={workdir}"), cwd=REPO, env=harness.env(workdir),
                          capture_output=True, text=True, timeout=240)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "resumed from" in result.stdout and f"done: {STEPS} steps (completed)" in result.stdout, result.stdout
  ours, theirs = load_state_arrays(workdir), load_state_arrays(reference[0])
  assert int(ours["step"]) == STEPS
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
    np.testing.assert_array_equal(a, b)


def test_lbfgs_converges_and_logs_the_loss_of_the_projected_image(tmp_path):
  """L-BFGS reuses the loss its line search stored; after a clip moved the image that value is stale, so the loss
  logged at step s must still be the loss of the image saved at step s - 1 (NumPy)."""
  workdir, steps = str(tmp_path), 8
  summary = input_opt.run(_config("optimizer=lbfgs,tv=0.01", num_train_steps=steps, render_every=0,
                                  **{"checkpoint.every_steps": 1, "checkpoint.keep": steps}), workdir)
  assert summary["final_eval"]["mse"] < 0.003, summary["final_eval"]  # the noise starts near 0.3
  state = load_state_arrays(workdir)
  paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(state)]
  assert any("diff_params_memory" in p for p in paths) and any("num_linesearch_steps" in p for p in paths)
  logged = dict(writers.read_csv(os.path.join(workdir, "metrics.csv"))["train"]["loss"])
  clipped = 0
  for step in range(2, steps + 1):
    image = load_state_arrays(workdir, step=step - 1)["image"][0].astype(np.float64)
    clipped += image.min() == 0.0 or image.max() == 1.0
    expected = np.mean((image[..., 0] - _target()) ** 2) + 0.01 * _numpy_tv(image) / image.size
    assert logged[step] == pytest.approx(expected, rel=1e-5), step
  assert clipped, "no step was clipped: the stale-value path went untested"
