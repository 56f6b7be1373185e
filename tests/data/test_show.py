"""`python -m vision_jax.data show`: writes a PNG grid and prints the feature table and counts for every dataset
`datasets.load` knows (generated ones and the TFDS-prepared embedded MNIST); an unknown dataset is one `error:`
line and exit status 2. Counts are checked against NumPy on the split's arrays, box drawing against the pixel
convention."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from vision_jax.data import __main__ as cli  # noqa: E402
from vision_jax.data import datasets, show, synthetic  # noqa: E402
from vision_jax.plots import annotations  # noqa: E402


@pytest.mark.parametrize("name", synthetic.NAMES)
def test_show_draws_every_generated_dataset(name, tmp_path, capsys):
  out = tmp_path / "grid.png"
  assert cli.main(["show", name, "--split=test", "--n=5", f"--out={out}"]) == 0
  printed = capsys.readouterr().out
  with Image.open(out) as png:
    assert png.size[0] > 200 and png.size[1] > 100
  _, spec = datasets.load(name, "test")
  for key, feature in spec.features.items():
    assert any(line.split()[:3] == [key, feature.kind, feature.dtype] and str(tuple(feature.shape)) in line
               for line in printed.splitlines()), key
  assert f"examples: {spec.num_examples}" in printed and "wrote" in printed


def test_show_counts_objects_and_box_sizes(tmp_path):
  text = show.show("digit_scenes", "test", n=4, out=str(tmp_path / "g.png"))
  source, _ = datasets.load("digit_scenes", "test")
  num_objects = source.arrays["num_objects"]
  boxes = source.arrays["boxes"]
  per_image = ", ".join(f"{k}:{n}" for k, n in enumerate(np.bincount(num_objects)) if n)
  assert f"objects: {num_objects.sum()}, per image: {per_image}" in text
  valid = np.arange(6) < num_objects[:, None]
  sizes = np.sqrt((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]))[valid]
  assert f"[16,24)={np.sum((sizes >= 16) & (sizes < 24))}" in text
  assert "semantic_mask   mask            uint8    (96, 96)     11 classes: background, 0, 1" in text


def test_object_statistics_hand_worked():
  boxes = np.array([[[0, 0, 4, 4], [0, 0, 10, 10], [9, 9, 9, 9]], [[0, 0, 20, 5], [0, 0, 0, 0], [0, 0, 0, 0]]])
  stats = show.object_statistics(boxes, np.array([2, 1]))
  assert stats["objects_per_image"].tolist() == [0, 1, 1, 0]
  assert stats["box_size_counts"][:3].tolist() == [1, 2, 0]  # sizes 4, 10, 10 in [0,8), [8,16)


def test_show_reads_the_tfds_embedded_mnist(data_dir, tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("TFDS_DATA_DIR", data_dir)
  assert cli.main(["show", "mnist_embedded", "--split=test", "--n=3", f"--out={tmp_path / 'm.png'}"]) == 0
  printed = capsys.readouterr().out
  assert "image  image  uint8  (28, 28, 1)" in printed and "examples: 2000" in printed
  assert (tmp_path / "m.png").exists()


@pytest.mark.parametrize("argv,message", [(["show", "no_such_dataset"], "error: unknown dataset 'no_such_dataset'"),
                                          (["show", "digit_scenes", "--split=validation"], "error: generated dataset"),
                                          (["show", "digit_scenes", "--n=0"], "error: --n=0")])
def test_mistakes_are_one_error_line_and_status_2(argv, message, tmp_path, capsys):
  assert cli.main(argv + [f"--out={tmp_path / 'x.png'}"]) == 2
  err = capsys.readouterr().err
  assert err.startswith(message) and err.count("\n") == 1


def test_boxes_are_drawn_on_pixel_edges():
  fig, ax = plt.subplots()
  image = np.zeros((10, 10, 1), np.uint8)
  annotations.draw_annotations(ax, image, boxes=np.array([[2, 3, 5, 9]], np.float32), box_labels=np.array([1]),
                               class_names=("a", "b"))
  (rect,) = ax.patches
  assert rect.get_xy() == (1.5, 2.5) and (rect.get_width(), rect.get_height()) == (3, 6)  # pixel c spans c-0.5..
  assert [t.get_text() for t in ax.texts] == ["b"]
  plt.close(fig)
