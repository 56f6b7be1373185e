"""The TFDS metric-learning configs (configs/siamese_omniglot.py, configs/siamese_lfw.py) end to end through
`python -m vision_jax.main`, on small fakes prepared with the real TFDS builders' features (`tests.data.fake_tfds`):
Omniglot's background characters train and its evaluation characters are scored 20-way one-shot; LFW's people are
split by name, the first 80% training and the rest evaluated, so no evaluated person is ever trained on."""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw

from tests.data.fake_tfds import encoded, fake_builder
from tests.training import harness
from vision_jax import config_loading
from vision_jax.data import datasets, subsets

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OMNIGLOT_TRAIN, OMNIGLOT_TEST, OMNIGLOT_DRAWINGS = 8, 21, 10  # characters, drawings of each
LFW_PEOPLE, LFW_IMAGES = 30, 4  # 6 held-out people: 5-way one-shot episodes


def _drawings(rng, count: int, each: int, size: int, ink: tuple, page: tuple) -> list[bytes]:
  """`count` characters of two random three-point strokes, `each` jittered drawings of every one, encoded."""
  out = []
  for _ in range(count):
    strokes = [rng.uniform(0.15 * size, 0.85 * size, (3, 2)) for _ in range(2)]
    for _ in range(each):
      image = Image.new("RGB", (size, size), page)
      pen = ImageDraw.Draw(image)
      for stroke in strokes:
        pen.line([tuple(float(v) for v in p) for p in stroke + rng.normal(0, 0.02 * size, stroke.shape)], fill=ink,
                 width=max(2, size // 30))
      out.append(encoded(np.asarray(image)))
  return out


def _record(image: bytes, label: int, first_of_set: int) -> dict:
  return {"image": image, "label": label, "alphabet": 0 if label < 964 else 30,
          "alphabet_char_id": label - first_of_set}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  """Fake Omniglot (background characters 0.., evaluation characters 964..) and LFW (people named P00..P29, written
  in shuffled order) prepared as array_record."""
  path = str(tmp_path_factory.mktemp("tfds"))
  rng = np.random.default_rng(0)
  train = [_record(im, i // OMNIGLOT_DRAWINGS, 0)
           for i, im in enumerate(_drawings(rng, OMNIGLOT_TRAIN, OMNIGLOT_DRAWINGS, 105, (0,) * 3, (255,) * 3))]
  test = [_record(im, 964 + i // OMNIGLOT_DRAWINGS, 964)
          for i, im in enumerate(_drawings(rng, OMNIGLOT_TEST, OMNIGLOT_DRAWINGS, 105, (0,) * 3, (255,) * 3))]
  faces = [{"image": im, "label": f"P{i // LFW_IMAGES:02d}"}
           for i, im in enumerate(_drawings(rng, LFW_PEOPLE, LFW_IMAGES, 250, (200, 150, 120), (20, 40, 60)))]
  faces = [faces[i] for i in rng.permutation(len(faces))]
  tfds.disable_progress_bar()
  for name, splits in (("omniglot", {"train": train, "test": test}), ("lfw", {"train": faces})):
    fake_builder(name, tfds.builder_cls(name), splits)(data_dir=path, file_format="array_record").download_and_prepare()
  return path


def _run(data_dir: str, tmp_path, config: str) -> dict:
  workdir = str(tmp_path / "run")
  result = harness.run_main(data_dir, f"--config={os.path.join(REPO, 'configs', config)}", f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-2000:]
  for picture in ("embedding_pca.png", "hardest_pairs.png", "curves.png", "verification_roc.png", "episodes.png",
                  "episode_confusion.png"):
    assert os.path.getsize(os.path.join(workdir, picture)) > 0, picture
  with open(os.path.join(workdir, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  confusion = np.asarray(summary["episode_confusion"]["counts"])
  setting = summary["episode_confusion"]["setting"]
  assert np.isclose(np.trace(confusion) / confusion.sum(), summary["final_eval"][setting])
  return summary["final_eval"]


def test_lfw_config_holds_people_out_of_training(data_dir):
  config = config_loading.load_config(os.path.join(REPO, "configs", "siamese_lfw.py"))
  people = {}
  for split, train in (("train", True), ("eval", False)):
    source, spec = datasets.load("lfw", config.dataset[f"{split}_split"], data_dir)
    source, spec = subsets.from_config(config.dataset, source, spec, train=train)
    names = spec.features["identity"].class_names
    people[split] = {names[int(source[i]["identity"])] for i in range(len(source))}
    assert len(source) == LFW_IMAGES * len(names) and spec.features["identity"].num_classes == len(names)
  assert people["train"] == {f"P{i:02d}" for i in range(24)}  # 30 * 80 // 100 = 24 people train
  assert people["eval"] == {f"P{i:02d}" for i in range(24, 30)}


def test_lfw_config_trains_and_verifies_held_out_people(data_dir, tmp_path):
  final = _run(data_dir, tmp_path, "siamese_lfw.py:smoke,model=simple_cnn,size=32")
  assert final["num_classes"] == 6 and 0.0 <= final["verification_auc"] <= 1.0
  assert 0.0 <= final["gallery_top1_enrol1"] <= 1.0


def test_omniglot_config_scores_20_way_one_shot_on_evaluation_characters(data_dir, tmp_path):
  final = _run(data_dir, tmp_path, "siamese_omniglot.py:smoke,size=28")
  assert final["num_classes"] == OMNIGLOT_TEST  # the test split's characters only
  for metric in ("episodes_20way_1shot", "episodes_5way_1shot", "episodes_5way_5shot", "verification_auc"):
    assert 0.0 <= final[metric] <= 1.0, metric
  assert final["episodes_20way_1shot_ci95"] >= 0.0
