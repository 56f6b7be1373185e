"""One real smoke run in-process: outputs, evaluation, prediction and the other-model checkpoint error."""

import glob
import json
import os
import struct

import numpy as np
import pytest
from PIL import Image

from vision_jax import train
from vision_jax.train_lib import setup
from vision_jax.train_lib.checkpoint import load_state_arrays
from vision_jax.configs import mnist_lenet
from vision_jax.data import datasets
from vision_jax.errors import CheckpointError, UserError


def _config(data_dir, arg="smoke"):
  config = mnist_lenet.get_config(arg)
  config.dataset.data_dir = data_dir
  return config


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("smoke"))
  summary = train.train_and_evaluate(_config(data_dir), workdir)
  return workdir, summary


def _tensorboard_scalars(directory):
  """Reads scalar summaries from TFRecord-framed event files (length, crc, payload, crc)."""
  from tensorboardX.proto import event_pb2  # pylint: disable=import-outside-toplevel
  tags = set()
  for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
    data = open(path, "rb").read()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
      offset += 12 + length + 4
      tags.update(v.tag for v in event.summary.value)
  return tags


def test_outputs_of_a_run(run):
  workdir, summary = run
  assert summary["steps"] == 20 and summary["stop_reason"] == "completed"
  assert summary["final_eval"]["num_examples"] == 2000  # every test digit exactly once
  on_disk = json.load(open(os.path.join(workdir, "summary.json")))
  assert on_disk["final_eval"]["accuracy"] == pytest.approx(summary["final_eval"]["accuracy"])
  for name in ("metrics.csv", "curves.png", "confusion_matrix.png"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0
  rows = open(os.path.join(workdir, "metrics.csv")).read().splitlines()
  assert rows[0] == "step,split,metric,value" and any(",eval,accuracy," in r for r in rows)
  assert {"train/loss", "train/accuracy", "eval/accuracy", "eval/top5_accuracy"} <= _tensorboard_scalars(
      os.path.join(workdir, "tensorboard"))
  state = load_state_arrays(workdir)
  assert int(state["step"]) == 20 and np.isfinite(state["params"]["model"]["conv1"]["kernel"]).all()


def test_eval_mode_reproduces_the_final_evaluation(run, data_dir):
  workdir, summary = run
  metrics = setup.evaluate(_config(data_dir), workdir)
  assert metrics["num_examples"] == 2000
  assert metrics["accuracy"] == pytest.approx(summary["final_eval"]["accuracy"])
  assert metrics["confusion"].sum() == 2000


def test_predict_reads_pngs_and_rejects_wrong_channels(run, data_dir, tmp_path):
  workdir, _ = run
  source, _ = datasets.load("mnist_embedded", "test", data_dir)
  digit = source[0]["image"][:, :, 0]
  gray, rgb = str(tmp_path / "digit.png"), str(tmp_path / "rgb.png")
  Image.fromarray(digit).save(gray)
  Image.fromarray(np.stack([digit] * 3, -1)).save(rgb)
  (line,) = train.predict_mode(_config(data_dir), workdir, [gray])
  path, _, top = line.partition(": ")
  probabilities = [float(item.split()[1]) for item in top.split(", ")]
  assert path == gray and len(probabilities) == 3 and sum(probabilities) <= 1.0 + 1e-3
  assert probabilities == sorted(probabilities, reverse=True)
  with pytest.raises(UserError, match="has 3 channel.*expects 1; convert it to grayscale"):
    train.predict_mode(_config(data_dir), workdir, [rgb])
  bad = tmp_path / "notes.png"
  bad.write_text("not an image")
  with pytest.raises(UserError, match="cannot read .*notes.png as an image"):
    train.predict_mode(_config(data_dir), workdir, [str(bad)])


def test_a_workdir_of_another_model_is_refused(run, data_dir):
  workdir, _ = run
  with pytest.raises(CheckpointError, match="checkpoint of another run \\(model='lenet5_relu'\\).*model='lenet5'"):
    train.train_and_evaluate(_config(data_dir, "smoke,model=lenet5"), workdir)
