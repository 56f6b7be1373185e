"""The folder-of-masks recipe (configs/seg_folder_unet.py) end to end through `python -m vision_jax.main`: train,
evaluate, then predict into PATH/predictions/ without touching the dataset's own folders."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.data.formats import writers
from tests.training import harness

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_scenes(root: str, count: int = 10, side: int = 32) -> None:
  """Squares of class 1 (red) and 2 (green) on black, a few pixels unlabelled (255)."""
  rng = np.random.default_rng(0)
  for n in range(count):
    image = np.zeros((side, side, 3), np.uint8)
    mask = np.zeros((side, side), np.uint8)
    for cls, channel in ((1, 0), (2, 1)):
      y, x = rng.integers(0, side - 10, 2)
      image[y:y + 10, x:x + 10, channel] = 220
      mask[y:y + 10, x:x + 10] = cls
    mask[0, :3] = 255
    writers.write_image(f"{root}/images/scene{n}.png", image)
    writers.write_image(f"{root}/masks/scene{n}.png", mask)
  writers.write_text(f"{root}/classes.txt", "background\nred\ngreen\n")


@pytest.mark.slow
def test_folder_recipe_trains_evaluates_and_predicts(tmp_path):
  root = str(tmp_path / "pairs")
  _write_scenes(root)
  before = sorted(os.listdir(f"{root}/images")), sorted(os.listdir(f"{root}/masks"))
  workdir = str(tmp_path / "run")
  config = f"--config={os.path.join(REPO, 'configs', 'seg_folder_unet.py')}:path={root},size=32,depth=2,smoke"
  tfds = str(tmp_path / "tfds")
  result = harness.run_main(tfds, config, f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["final_eval"]["num_examples"] == 2  # 20% of 10 pairs held out, seeded
  assert set(summary["per_class"]) == {"background", "red", "green"}
  result = harness.run_main(tfds, config, f"--workdir={workdir}", "--mode=predict",
                            f"--images={root}/images/scene3.png")
  assert result.returncode == 0, result.stderr[-2000:]
  mask = np.asarray(Image.open(f"{root}/predictions/scene3_mask.png"))
  assert mask.shape == (32, 32) and mask.max() <= 2
  assert os.path.exists(f"{root}/predictions/scene3_overlay.png")
  assert (sorted(os.listdir(f"{root}/images")), sorted(os.listdir(f"{root}/masks"))) == before
