"""The picture commands and the input problems, end to end on small inputs (random or fixture weights)."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.fixtures.interop.fill import fill_state_dict
from vision_jax import config_loading
from vision_jax.errors import ConfigError
from vision_jax.interpret import __main__ as cli
from vision_jax.train_lib import input_opt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "interpret", "references.npz")


@pytest.fixture(scope="module")
def weights_and_image(tmp_path_factory):
  """A torchvision-layout ResNet-18 state dict (.npz, 10 classes) and a 64x64 RGB PNG."""
  tmp = tmp_path_factory.mktemp("cli")
  with np.load(FIXTURE, allow_pickle=False) as f:
    keys, shapes, image = [str(k) for k in f["keys"]], list(f["shapes"]), f["images"][0]
  state = fill_state_dict(keys, [tuple(int(d) for d in s.split(",") if d) for s in shapes])
  weights = str(tmp / "resnet18.npz")
  np.savez(weights, **state)
  picture = str(tmp / "card.png")
  Image.fromarray(np.round(image * 255).astype(np.uint8)).save(picture)
  return weights, picture, tmp


def test_gradcam_overlay_and_layers_commands(weights_and_image):
  weights, picture, tmp = weights_and_image
  common = ["--model=resnet18", f"--weights={weights}", "--size=64"]
  layers = cli.run(["layers"] + common)
  assert any(line.startswith("layer4_1 [1, 2, 2, 512]") for line in layers)
  written = cli.run(["gradcam", *common, f"--images={picture}", "--layer=layer3_1", f"--out={tmp}/cam"])
  assert written == [os.path.join(f"{tmp}/cam", "card_gradcam.png")]
  with Image.open(written[0]) as im:
    assert im.width > 300 and im.height > 200  # two panels and a colour bar
  with pytest.raises(ConfigError, match="--class=99"):
    cli.run(["saliency", *common, f"--images={picture}", "--class=99"])


def test_filters_grid(weights_and_image):
  weights, _, tmp = weights_and_image
  written = cli.run(["filters", "--model=resnet18", f"--weights={weights}", "--size=64", f"--out={tmp}/f"])
  assert os.path.getsize(written[0]) > 1000


@pytest.mark.slow  # ~2 min under load: compiles a ResNet's gradient for two octave sizes
def test_deepdream_ascends_over_octaves(tmp_path):
  config = config_loading.load_config(
      f"{REPO}/configs/deepdream.py:smoke,network=random,size=24,octaves=2,layers=layer2_1,render_every=0")
  config.num_train_steps = 6
  config.log_every_steps = 1  # logged values are means since the previous log
  summary = input_opt.run(config, str(tmp_path))
  with open(tmp_path / "metrics.csv", encoding="utf-8") as f:
    rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
  objective = [float(r["value"]) for r in rows if r["metric"] == "objective"]
  octave = [float(r["value"]) for r in rows if r["metric"] == "octave"]
  assert objective[-1] > objective[0] and summary["final_eval"]["objective"] > objective[0]
  assert octave[0] == 0.0 and octave[-1] == 1.0  # the second octave ran
  assert os.path.exists(tmp_path / "image.png") and os.path.exists(tmp_path / "start.png")


def test_style_transfer_command_writes_pictures_and_curves(tmp_path):
  workdir = tmp_path / "style"
  result = subprocess.run(
      [sys.executable, "-m", "vision_jax.main", "--config=configs/style_transfer.py:smoke,network=random",
       f"--workdir={workdir}"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  for name in ("image.png", "content.png", "style.png", "progress.png", "curves.png", "summary.json"):
    assert os.path.exists(workdir / name), name
  with open(workdir / "metrics.csv", encoding="utf-8") as f:
    rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
  losses = [float(r["value"]) for r in rows if r["metric"] == "loss"]
  assert {"content_loss", "style_loss", "tv_loss"} <= {r["metric"] for r in rows}
  assert losses[-1] < losses[0]


def test_style_transfer_rejects_an_empty_style_layer_list():
  config = config_loading.load_config(f"{REPO}/configs/style_transfer.py:smoke,network=random,style_layers=")
  from vision_jax.tasks import input_problem  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConfigError, match="style_layers"):
    input_problem.get_problem(config)
