"""The README as a new user tries it: finished runs keep their results, bad settings are one-line errors,
Ctrl-C saves like SIGTERM, resumed summaries cover the whole run, curves show what was logged."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.training import harness
from vision_jax import train
from vision_jax.configs import mnist_lenet
from vision_jax.errors import ConfigError
from vision_jax.train_lib import writers

CONFIG = "configs/mnist_lenet.py"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(data_dir, steps, **checkpoint):
  config = mnist_lenet.get_config("smoke")
  config.dataset.data_dir = data_dir
  config.num_train_steps = steps
  config.checkpoint.update(checkpoint)
  return config


def _assert_one_line_error(result, pattern):
  assert result.returncode == 2, result.stderr[-3000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
  assert re.search(pattern, lines[0]), lines[0]


def test_rerunning_a_finished_run_keeps_its_results(data_dir, tmp_path):
  workdir = str(tmp_path)
  first = train.train_and_evaluate(_config(data_dir, 6), workdir)
  path = os.path.join(workdir, "summary.json")
  saved = open(path).read()
  again = train.train_and_evaluate(_config(data_dir, 6), workdir)
  assert open(path).read() == saved  # not overwritten with an empty evaluation
  assert again["already_finished"] and again["final_eval"] == json.loads(saved)["final_eval"]
  assert again["final_eval"]["accuracy"] == pytest.approx(first["final_eval"]["accuracy"])
  # Killed between the final checkpoint and summary.json: the rerun evaluates the final state again.
  os.remove(path)
  rebuilt = train.train_and_evaluate(_config(data_dir, 6), workdir)
  assert rebuilt["steps"] == 6 and rebuilt["final_eval"]["accuracy"] == pytest.approx(first["final_eval"]["accuracy"])
  assert json.load(open(path))["final_eval"]["num_examples"] == 2000
  with pytest.raises(ConfigError, match="at step 6, past this config's 4 steps"):
    train.train_and_evaluate(_config(data_dir, 4), workdir)


def test_a_resumed_summary_covers_the_whole_run(data_dir, tmp_path):
  workdir = str(tmp_path)
  part = train.train_and_evaluate(_config(data_dir, 8), workdir)
  whole = train.train_and_evaluate(_config(data_dir, 16), workdir)
  batch = mnist_lenet.get_config("smoke").input.batch_size
  # Each part leaves its first (compiling) step out of the throughput.
  assert part["train_images"] == 7 * batch and whole["train_images"] == 14 * batch
  assert whole["wall_time_sec"] > part["wall_time_sec"]
  assert whole["first_step_sec"] == pytest.approx(part["first_step_sec"])


@pytest.mark.parametrize("override, pattern", [
    ("--config.input.batch_size=0", r"input.batch_size=0 must be a positive integer"),
    ("--config.input.batch_size=-8", r"input.batch_size=-8 must be a positive integer"),
    ("--config.input.eval_batch_size=0", r"input.eval_batch_size=0 must be a positive integer"),
    ("--config.num_epochs=0", r"num_epochs=0 trains nothing"),
    ("--config.log_every_steps=0", r"log_every_steps=0 must be a positive integer"),
    ("--config.checkpoint.keep=0", r"checkpoint.keep=0 keeps no checkpoint"),
    ("--config.optimizer.learning_rate=-0.1", r"learning rate of 'model' is -0.1"),
])
def test_impossible_settings_are_one_line_errors(data_dir, tmp_path, override, pattern):
  result = harness.run_main(data_dir, f"--config={CONFIG}", override, f"--workdir={tmp_path}")
  _assert_one_line_error(result, pattern)
  assert not os.path.exists(tmp_path / "summary.json")


def test_an_old_format_checkpoint_is_a_one_line_error(data_dir, tmp_path):
  config = _config(data_dir, 2)
  train.train_and_evaluate(config, str(tmp_path))
  meta = next(p for p in tmp_path.glob("checkpoints/*/meta/metadata") if p.is_file())
  data = json.loads(meta.read_text())
  data["identity"].pop("format")  # what a checkpoint of the one-network layout looks like
  meta.write_text(json.dumps(data))
  for best in tmp_path.glob("best/*"):
    os.rename(best, tmp_path / f"old_best_{best.name}")
  (tmp_path / "summary.json").unlink()
  result = harness.run_main(data_dir, f"--config={CONFIG}:smoke", "--config.num_train_steps=4", f"--workdir={tmp_path}")
  _assert_one_line_error(result, r"checkpoint of format 1 \(written by an older vision_jax\).*new --workdir")


def test_ctrl_c_saves_and_exits_like_sigterm(data_dir, tmp_path):
  args = [f"--config={CONFIG}", "--config.num_train_steps=100000", "--config.log_every_steps=5",
          "--config.eval_every_steps=100000", f"--workdir={tmp_path}"]
  proc = subprocess.Popen(harness.main_cmd(*args), env=harness.env(data_dir), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while not (tmp_path / "metrics.csv").exists() or "train" not in (tmp_path / "metrics.csv").read_text():
    assert time.time() < deadline and proc.poll() is None, "the run never logged a step"
    time.sleep(0.2)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err[-3000:]
  assert "Traceback" not in err and "KeyboardInterrupt" not in err
  assert re.search(r"SIGINT received: saved a checkpoint at step \d+", out)
  assert "(preempted)" in out and any(p.name.isdigit() for p in (tmp_path / "checkpoints").iterdir())
  # Stopped before any evaluation: it leaves at once, without evaluating or writing reports.
  assert "final eval: none yet" in out and not (tmp_path / "confusion_matrix.png").exists()
  assert json.load(open(tmp_path / "summary.json"))["final_eval"] == {}


def test_curves_show_every_logged_metric_and_nothing_when_nothing_was_logged(tmp_path):
  class Task:
    curve_metrics = None  # e.g. a multi-head task: every head's metrics

  writer = writers.MetricWriter(str(tmp_path))
  writer.write(5, "train", {"loss": 1.0, "sum_loss": 0.5, "same_accuracy": 0.7, "learning_rate": 0.1,
                            "images_per_sec": 10.0})
  writer.write(5, "eval", {"loss": 0.9, "sum_mae": 0.2})
  writer.close()
  assert writers.curve_names(writers.read_csv(str(tmp_path / "metrics.csv")), Task.curve_metrics) == [
      "loss", "same_accuracy", "sum_loss", "sum_mae"]
  assert writers.curve_names(writers.read_csv(str(tmp_path / "metrics.csv")), ("loss", "accuracy")) == ["loss"]
  writers.write_curves(str(tmp_path), Task.curve_metrics)
  assert (tmp_path / "curves.png").stat().st_size > 0
  empty = tmp_path / "empty"
  empty.mkdir()
  writers.MetricWriter(str(empty)).close()  # a run that logged nothing: no blank picture
  assert writers.write_curves(str(empty), Task.curve_metrics) is None
  assert not (empty / "curves.png").exists()


def test_a_torn_or_headerless_metrics_csv_is_repaired(tmp_path):
  path = tmp_path / "metrics.csv"
  path.write_text("")  # killed before the first flush
  writer = writers.MetricWriter(str(tmp_path))
  writer.write(1, "train", {"loss": 2.0})
  writer.close()
  path.write_text(path.read_text() + "7,train,lo")  # a torn last line
  writer = writers.MetricWriter(str(tmp_path))
  writer.write(2, "train", {"loss": 1.5})
  writer.close()
  assert path.read_text().splitlines()[0] == "step,split,metric,value"
  assert writers.read_csv(str(path)) == {"train": {"loss": [(1, 2.0), (2, 1.5)]}}


def test_tensorboard_viewer_is_an_extra_and_readme_names_it():
  tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    extras = tomllib.load(f)["project"]["optional-dependencies"]
  assert any(req.startswith("tensorboard>") for req in extras["tensorboard"])
  readme = open(os.path.join(ROOT, "README.md")).read()
  assert "pip install -e '.[tensorboard]' && tensorboard --logdir runs" in readme


def test_readme_describes_the_architecture_itself():
  readme = open(os.path.join(ROOT, "README.md")).read()
  assert "../shared" not in readme and "## Architecture" in readme
  for room in ("train_lib/", "tasks/", "losses/", "evaluation/", "backends/cpu/", "data/augment/"):
    assert room in readme
