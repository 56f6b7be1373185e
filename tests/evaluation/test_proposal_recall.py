"""Proposal recall: best overlaps and recall curves against hand-computed IoUs, the selective-search summary on
hand-made images, the PNG and the command's error path."""

import numpy as np
from PIL import Image

from vision_jax.evaluation import proposal_recall


def test_best_overlaps_by_hand():
  gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
  proposals = np.array([[0, 0, 5, 10], [0, 0, 10, 10], [25, 20, 35, 30]], np.float32)
  # IoUs: first gt 0.5, 1, 0; second gt 0, 0, 50 / 150
  want = np.array([[0.5, 0.0], [1.0, 0.0], [1.0, 1 / 3], [1.0, 1 / 3], [1.0, 1 / 3]])
  np.testing.assert_allclose(proposal_recall.best_overlaps(proposals, gt, 5), want, rtol=1e-6)
  np.testing.assert_allclose(proposal_recall.best_overlaps(proposals, gt, 1), want[:1], rtol=1e-6)
  np.testing.assert_array_equal(proposal_recall.best_overlaps(np.zeros((0, 4)), gt, 2), np.zeros((2, 2)))


def test_recall_curves_pool_boxes_over_images():
  image_a = np.array([[0.5, 0.0], [0.8, 0.6], [0.8, 0.6]])
  image_b = np.array([[0.75], [0.75], [0.9]])
  curves = proposal_recall.recall_curves([image_a, image_b], (0.5, 0.7))
  # three boxes; IoU >= 0.5 after n = 1, 2, 3 proposals: 2, 3, 3 of them; >= 0.7: 1, 2, 2
  np.testing.assert_allclose(curves, [[2 / 3, 1, 1], [1 / 3, 2 / 3, 2 / 3]])


def test_evaluate_finds_flat_squares_and_plots(tmp_path):
  image = np.zeros((40, 40, 1), np.uint8)
  image[3:15, 4:20] = 200
  image[22:36, 18:38] = 120
  gt = np.array([[4, 3, 20, 15], [18, 22, 38, 36]], np.float32)
  summary, curves = proposal_recall.evaluate([image, image[::-1]], [gt, gt[:, [0, 3, 2, 1]] * [1, -1, 1, -1] +
                                                                    [0, 40, 0, 40]], mode="single", counts=(1, 50))
  assert curves.shape == (2, 50)
  assert summary["recall"]["iou_0.7"]["50"] == 1.0 and summary["num_gt_boxes"] == 4
  assert summary["recall"]["iou_0.5"]["1"] < 1.0  # one proposal cannot cover two boxes
  assert summary["average_best_overlap"] > 0.8 and summary["proposals_per_image"]["min"] >= 3
  path = tmp_path / "recall.png"
  proposal_recall.plot_recall(curves, (0.5, 0.7), str(path), "test", summary["proposals_per_image"]["mean"])
  assert Image.open(path).size == (600, 400)


def test_command_rejects_bad_input(tmp_path, capsys):
  assert proposal_recall.main(["--num_images=0", f"--out={tmp_path}"]) == 2
  assert "--num_images" in capsys.readouterr().err
  assert proposal_recall.main(["--dataset=mnist_embedded", "--num_images=2", f"--out={tmp_path}"]) == 2
  assert "has no boxes" in capsys.readouterr().err
