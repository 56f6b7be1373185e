"""Ensembles and TTA through real checkpoints: one member is the plain evaluation, identical members change
nothing, two members (here one run without and with the flip TTA) average their probabilities; metrics from
probabilities against hand computation."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from vision_jax import train
from vision_jax.configs import mnist_lenet
from vision_jax.data import datasets
from vision_jax.errors import ConfigError
from vision_jax.tasks import classification_eval as ensemble
from vision_jax.train_lib import setup


def _config(data_dir, seed=0, **eval_options):
  config = mnist_lenet.get_config("smoke")
  config.dataset.data_dir = data_dir
  config.num_train_steps = 10
  config.seed = seed
  config.eval.update(eval_options)
  return config


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
  """A 10-step LeNet-5 run: (config, workdir)."""
  workdir = str(tmp_path_factory.mktemp("lenet"))
  train.train_and_evaluate(_config(data_dir), workdir)
  return _config(data_dir), workdir


@pytest.fixture(scope="module")
def singles(run, data_dir):
  """The run evaluated alone, without TTA and with the flip TTA (two members with distinct probabilities)."""
  return [ensemble.evaluate([run], setup), ensemble.evaluate([(_config(data_dir, tta="flip"), run[1])], setup)]


def test_one_member_is_the_plain_evaluation(run, singles):
  plain = setup.evaluate(*run)
  got = singles[0].metrics
  assert got["num_examples"] == plain["num_examples"] == 2000
  assert got["accuracy"] == plain["accuracy"] and got["top5_accuracy"] == plain["top5_accuracy"]
  assert got["loss"] == pytest.approx(plain["loss"], rel=1e-4)
  np.testing.assert_array_equal(got["confusion"], plain["confusion"])
  assert got["macro_f1"] == pytest.approx(plain["macro_f1"])
  np.testing.assert_allclose(singles[0].probabilities.sum(-1), 1.0, atol=1e-5)


def test_identical_members_equal_the_single_model(run, singles):
  twice = ensemble.evaluate([run, run], setup)
  np.testing.assert_allclose(twice.probabilities, singles[0].probabilities, rtol=1e-6)
  assert twice.metrics["accuracy"] == singles[0].metrics["accuracy"]


def test_two_members_average_their_probabilities(run, singles, data_dir):
  members = [run, (_config(data_dir, tta="flip"), run[1])]
  both = ensemble.evaluate(members, setup)
  expected = (singles[0].probabilities.astype(np.float64) + singles[1].probabilities) / 2
  assert np.abs(singles[0].probabilities - singles[1].probabilities).max() > 0.01  # the members differ
  np.testing.assert_allclose(both.probabilities, expected, rtol=1e-6, atol=1e-7)
  labels = singles[0].labels
  assert both.metrics["accuracy"] == pytest.approx(np.mean(np.argmax(expected, -1) == labels))
  assert [m["accuracy"] for m in both.members] == [s.metrics["accuracy"] for s in singles]
  assert [m["tta"] for m in both.members] == ["none", "flip"]


def test_tta_views_reach_the_model(run, singles, data_dir):
  config, workdir = run
  s = setup.setup(config, workdir)
  state = setup.restore_for_eval(s, workdir)
  source, _ = datasets.load("mnist_embedded", "test", data_dir)
  images = np.stack([source[i]["image"] for i in range(16)])
  probs = [np.asarray(jax.nn.softmax(s.task.logits(state, x), -1)) for x in (images, images[:, :, ::-1])]
  np.testing.assert_allclose(singles[1].probabilities[:16], np.mean(probs, 0), rtol=1e-4, atol=1e-6)


def test_members_of_other_data_are_refused(run, data_dir):
  other = _config(data_dir)
  other.dataset.eval_split = "test[:50%]"
  with pytest.raises(ConfigError, match=f"ensemble member {run[1]} evaluates 1000 examples"):
    ensemble.evaluate([run, (other, run[1])], setup)


def test_metrics_from_probabilities_by_hand():
  probs = np.array([[0.50, 0.10, 0.10, 0.10, 0.10, 0.05, 0.05],
                    [0.05, 0.20, 0.30, 0.25, 0.10, 0.05, 0.05],
                    [0.20, 0.20, 0.20, 0.20, 0.15, 0.01, 0.04],
                    [0.30, 0.30, 0.10, 0.10, 0.10, 0.05, 0.05]])
  labels = np.array([0, 3, 5, 1])
  m = ensemble.metrics_from_probabilities(probs, labels)
  assert m["accuracy"] == 0.25  # only example 0; ties (examples 2 and 3) go to the lower class, as argmax does
  assert m["top5_accuracy"] == 0.75  # example 2's label is ranked last
  assert m["loss"] == pytest.approx(-np.mean(np.log([0.50, 0.25, 0.01, 0.30])))
  expected = np.zeros((7, 7), int)
  for true, pred in [(0, 0), (3, 2), (5, 0), (1, 0)]:
    expected[true, pred] += 1
  np.testing.assert_array_equal(m["confusion"], expected)
  # F1 = 2TP / (2TP + FP + FN): class 0 has TP 1, FP 2, FN 0 -> 1/2; every other class 0.
  assert m["macro_f1"] == pytest.approx(0.5 / 7)


def test_outputs_json_and_mistakes_grid(singles, tmp_path):
  result = singles[0]
  result.setup.config.unlock()
  result.setup.config.eval.misclassified = 5
  paths = ensemble.write_outputs(result, str(tmp_path))
  assert [os.path.basename(p) for p in paths] == ["eval.json", "misclassified.png"]
  report = json.load(open(paths[0]))
  assert report["metrics"]["accuracy"] == result.metrics["accuracy"]
  assert sum(row["support"] for row in report["per_class"].values()) == 2000
  assert Image.open(paths[1]).size == (round(1.7 * 5 * 100), round(1.9 * 100))  # 5 cells in one row
  mistakes = ensemble.most_confident_mistakes(result, 5)
  predicted = np.argmax(result.probabilities, -1)
  assert np.all(predicted[mistakes] != result.labels[mistakes])
  confidence = result.probabilities[mistakes, predicted[mistakes]]
  assert np.all(np.diff(confidence) <= 0)
  wrong = predicted != result.labels
  assert confidence[0] == result.probabilities[wrong].max()


@pytest.mark.slow
def test_eval_mode_on_the_command_line(run, data_dir, tmp_path):
  """Two seeds trained and evaluated as an ensemble with 10-crop TTA by `python -m vision_jax.main`."""
  first, second = run[1], str(tmp_path / "seed1")
  train.train_and_evaluate(_config(data_dir, seed=1), second)
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-m", "vision_jax.main", "--mode=eval", "--config=configs/mnist_lenet.py:smoke",
                        f"--workdir={first}", f"--ensemble={second}", f"--config.dataset.data_dir={data_dir}",
                        "--config.eval.tta=ten_crop", "--config.eval.tta_pad=2"], capture_output=True, text=True,
                       env=env, timeout=600, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
  assert out.returncode == 0, out.stderr[-2000:]
  assert "ensemble of 2 runs on 2000 examples: loss" in out.stdout and "tta ten_crop" in out.stdout
  assert os.path.exists(os.path.join(first, "misclassified.png"))
