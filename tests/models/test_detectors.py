"""Detector networks: SSD300-VGG16 against torchvision (parameter count, default boxes, postprocessing; fixture
from tests/fixtures/detection/make_ssd.py), the small SSD's boxes, YOLO v1/v2/v3 output shapes and reorg."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.losses import detection as det_losses
from vision_jax.models.detectors import ssd, yolo
from vision_jax.ops import box_coding
from vision_jax.tasks import detectors

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "detection", "ssd_torchvision.npz")


@pytest.fixture(scope="module")
def tv():
  with np.load(FIXTURE, allow_pickle=False) as f:
    return dict(f)


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_ssd300_vgg16_parameter_count_and_outputs_match_torchvision(tv):
  model = ssd.SSD300VGG16(91)
  images = jnp.zeros((1, 300, 300, 3))
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), images))
  assert _count(variables["params"]) == int(tv["ssd300_num_params"]) == 35_641_826
  logits, boxes = jax.eval_shape(lambda v: model.apply(v, images), variables)
  assert logits.shape == (1, 8732, 91) and boxes.shape == (1, 8732, 4)


def test_ssd300_default_boxes_equal_torchvision(tv):
  ours = ssd.SSD300VGG16.anchors()
  assert ours.shape == tv["ssd300_anchors"].shape == (8732, 4)
  np.testing.assert_array_equal(ours, tv["ssd300_anchors"])


def test_ssd_postprocess_equals_torchvision_postprocess_detections(tv):
  anchors = jnp.asarray(tv["loss_anchors"])
  boxes = box_coding.faster_rcnn_decode(anchors, jnp.asarray(tv["post_box_regression"][0]),
                                        det_losses.SSD_BOX_WEIGHTS)
  boxes = jnp.clip(boxes, 0, 100)
  scores = jax.nn.softmax(jnp.asarray(tv["post_cls_logits"][0]), -1)[:, 1:]
  out = detectors.postprocess(boxes, scores, 0.01, 400, 0.45, 200)
  count = int(out["pred_valid"].sum())
  assert count == len(tv["post_scores"])
  np.testing.assert_allclose(np.asarray(out["pred_scores"][:count]), tv["post_scores"], rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(np.asarray(out["pred_labels"][:count]) + 1, tv["post_labels"])
  np.testing.assert_allclose(np.asarray(out["pred_boxes"][:count]), tv["post_boxes"], rtol=0, atol=1e-4)
  assert not np.asarray(out["pred_valid"][count:]).any()


def test_small_ssd_default_boxes_follow_the_rule():
  boxes = ssd.SmallSSD.anchors((96, 96))
  assert boxes.shape == ((144 + 36 + 9 + 1) * 4, 4)
  # First location of the 12x12 map: centre (4, 4); boxes s, sqrt(s s'), then ratio 2 and 1/2 (clipped sizes).
  s, s2 = ssd.SMALL_SCALES[0], ssd.SMALL_SCALES[1]
  side = [96 * s, 96 * np.sqrt(s * s2)]
  expected = [[4 - side[0] / 2] * 2 + [4 + side[0] / 2] * 2, [4 - side[1] / 2] * 2 + [4 + side[1] / 2] * 2,
              [4 - 96 * s * np.sqrt(2) / 2, 4 - 96 * s / np.sqrt(2) / 2, 4 + 96 * s * np.sqrt(2) / 2,
               4 + 96 * s / np.sqrt(2) / 2]]
  np.testing.assert_allclose(boxes[:3], expected, rtol=1e-5)


def test_yolo_output_shapes():
  images = jnp.zeros((2, 96, 96, 1))
  shapes = {}
  for name, model in {"v1": yolo.YoloV1(10, grid=6, boxes_per_cell=2), "v2": yolo.YoloV2(10, num_anchors=5),
                      "v1_local": yolo.YoloV1(10, grid=6, head="local"),
                      "v1_conv": yolo.YoloV1(10, grid=6, head="conv"),
                      "v3": yolo.YoloV3(10), "v3_fine": yolo.YoloV3(10, strides=(16, 8, 4))}.items():
    variables = jax.eval_shape(lambda m=model: m.init(jax.random.PRNGKey(0), images))
    shapes[name] = jax.tree.map(lambda x: x.shape, jax.eval_shape(lambda v, m=model: m.apply(v, images), variables))
  assert shapes["v1"] == shapes["v1_local"] == shapes["v1_conv"] == (2, 6, 6, 20)
  assert shapes["v2"] == (2, 6, 6, 5, 15)
  assert shapes["v3"] == ((2, 3, 3, 3, 15), (2, 6, 6, 3, 15), (2, 12, 12, 3, 15))
  assert shapes["v3_fine"] == ((2, 6, 6, 3, 15), (2, 12, 12, 3, 15), (2, 24, 24, 3, 15))


def test_reorg_is_space_to_depth():
  x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
  out = np.asarray(yolo.reorg(jnp.asarray(x)))
  assert out.shape == (2, 2, 2, 12)
  for i in range(2):
    for j in range(2):
      block = x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2, :]  # [N, 2, 2, C] -> (dy, dx, c) order
      np.testing.assert_array_equal(out[:, i, j], block.reshape(2, 12))
