"""The two-stage (Faster/Mask R-CNN) task on two tiny 64x64 scenes: training RoIs checked against a NumPy IoU,
the loss falling over a few steps, eval outputs (bit-packed masks against np.packbits) and --mode=predict's picture
and COCO JSON with RLE masks. (The loop parts run in tests/tasks/test_conformance.py.)"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from vision_jax.data.features import Feature, make_spec, object_features
from vision_jax.errors import ConfigError
from vision_jax.ops.sampling import balanced_sample
from vision_jax.tasks import two_stage, two_stage_masks
from vision_jax.train_lib.state import TrainState
from tests.tasks import in_process

SIZE = 64
# (x1, y1, x2, y2, class) of the ink rectangles of the two scenes.
OBJECTS = [[(8, 6, 24, 30, 3), (36, 30, 58, 52, 7)], [(20, 16, 44, 40, 1)]]


def test_balanced_sample_with_fewer_candidates_than_the_sample():
  labels = jnp.array([1, 0, 0, -1, 1, 0])  # 2 positives, 3 negatives, 6 entries < batch 16
  for key in range(3):  # the random path used to fail with A < batch_size_per_image
    pos, neg = jax.device_get(balanced_sample(labels, 16, 0.5, key=jax.random.key(key)))
    # num_pos = min(2, 8) = 2; num_neg = min(3, 16 - 2) = 3: every candidate is taken, nothing ignored.
    np.testing.assert_array_equal(pos, [1, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(neg, [0, 1, 1, 0, 0, 1])
  pos, neg = jax.device_get(balanced_sample(jnp.array([1, 1, 1, 0, -1]), 4, 0.5, key=jax.random.key(0)))
  assert pos.sum() == 2 and not pos[3:].any() and neg.tolist() == [0, 0, 0, 1, 0]  # 2 of 3 positives, 1 negative


def _spec():
  return make_spec("tiny_scenes", "train", 2, {"image": Feature("image", (SIZE, SIZE, 1), "uint8"),
                                              **object_features(3, 10, tuple("0123456789"), (SIZE, SIZE))})


@pytest.mark.parametrize("key,value", [("grad_accum_steps", 2), ("remat", "full")])
def test_unsupported_train_options_are_refused_in_one_line(key, value):
  config = in_process.load_config("configs/det_rcnn_digits.py:variant=faster,smoke", "")
  two_stage.TwoStageTask(config, _spec())  # the defaults are accepted
  config.train[key] = value
  with pytest.raises(ConfigError, match="train.grad_accum_steps=1 and train.remat=none") as error:
    two_stage.TwoStageTask(config, _spec())
  assert "\n" not in str(error.value)


def _batch() -> dict[str, jnp.ndarray]:
  images = np.zeros((2, SIZE, SIZE, 1), np.uint8)
  boxes = np.zeros((2, 3, 4), np.float32)
  labels = np.full((2, 3), -1, np.int32)
  masks = np.zeros((2, 3, SIZE, SIZE), np.uint8)
  for i, objects in enumerate(OBJECTS):
    for j, (x1, y1, x2, y2, c) in enumerate(objects):
      images[i, y1:y2, x1:x2] = 80 + 40 * c // 2
      masks[i, j, y1:y2, x1:x2] = 1
      boxes[i, j], labels[i, j] = (x1, y1, x2, y2), c
  return {"image": jnp.asarray(images), "boxes": jnp.asarray(boxes), "box_labels": jnp.asarray(labels),
          "num_objects": jnp.array([2, 1], jnp.int32), "instance_masks": jnp.asarray(masks),
          "mask": jnp.ones((2,), bool)}


@pytest.fixture(scope="module", params=["faster", pytest.param("fpn", marks=pytest.mark.slow),
                                        pytest.param("mask", marks=pytest.mark.slow)])
def trained(request):
  """(task, state, losses) after 6 train steps on the two scenes; the FPN and Mask R-CNN cases take ~1.5 min each."""
  config = in_process.load_config(f"configs/det_rcnn_digits.py:variant={request.param},smoke", "")
  if request.param != "faster":
    config.rcnn.anchor_sizes = ((16,), (32,), (48,), (64,), (96,))
  task = two_stage.TwoStageTask(config, _spec())
  txs = {"model": optax.adam(2e-3)}
  state = TrainState.create(jax.jit(task.init_variables)(jax.random.PRNGKey(0)), txs, jax.random.PRNGKey(1), {})
  step = jax.jit(lambda s, b: task.train_step(s, b, txs))
  losses = []
  for _ in range(6):
    state, metrics = step(state, _batch())
    state = state.replace(step=state.step + 1)
    losses.append({k: float(v) for k, v in metrics.items()})
  return task, state, losses


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """NumPy IoU of [K, 4] and [G, 4] xyxy boxes."""
  lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
  inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
  area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
  return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_training_rois_are_sampled_as_documented(trained):
  task, state, _ = trained
  batch = _batch()

  @jax.jit
  def sample(variables, batch):
    images, boxes, labels, valid = task.prepare(jax.random.PRNGKey(0), batch, True)
    feats = task.model.apply(variables, images, method=type(task.model).features)
    objectness, deltas = task.model.apply(variables, feats, method=type(task.model).rpn)
    return task.sample_rois(objectness, deltas, boxes, labels, valid, jax.random.key(3))

  targets = jax.device_get(sample(state.variables("model"), batch))
  assert targets.proposals.shape == (2, 64, 4)  # box_batch_size rows per image
  for i, objects in enumerate(OBJECTS):
    gt = np.array([o[:4] for o in objects], np.float32)
    rows = targets.sampled[i]
    iou = _iou(targets.proposals[i][rows], gt)
    lab = targets.labels[i][rows]
    positive = lab > 0
    assert positive.sum() <= 16  # a quarter of 64
    assert (iou[~positive].max(axis=1, initial=0) < 0.5).all()
    best = iou[positive].argmax(axis=1)
    assert (iou[positive].max(axis=1) >= 0.5).all()
    np.testing.assert_array_equal(lab[positive], gt_classes := np.array([o[4] + 1 for o in objects])[best])
    assert set(gt_classes) == {o[4] + 1 for o in objects}
    if positive.sum() < 16:  # every positive is kept, so the appended ground-truth boxes are among them
      for box in gt:
        assert (np.abs(targets.proposals[i][rows][positive] - box).max(axis=1) == 0).any()


def test_train_steps_lower_the_loss(trained):
  _, _, losses = trained
  task = trained[0]
  assert set(losses[0]) == {"loss", "rpn_objectness", "rpn_box", "classifier", "box_reg"} | (
      {"mask"} if task.with_masks else set())
  assert all(np.isfinite(list(l.values())).all() for l in losses)
  assert losses[-1]["loss"] < 0.8 * losses[0]["loss"], [l["loss"] for l in losses]


def test_eval_step_outputs(trained):
  task, state, _ = trained
  out = jax.device_get(jax.jit(task.eval_step)(state, _batch()))
  d = int(task.cfg.detections_per_img)
  assert out["pred_boxes"].shape == (2, d, 4) and out["pred_labels"].shape == (2, d)
  valid = out["pred_valid"]
  assert ((out["pred_labels"] >= 0) == valid).all() and (out["pred_labels"] < 10).all()
  assert (out["pred_boxes"] >= 0).all() and (out["pred_boxes"] <= SIZE).all()
  if not task.with_masks:
    assert "pred_mask_bits" not in out
    return
  assert out["pred_mask_bits"].shape == (2, d, SIZE * SIZE // 8) and out["truth_mask_bits"].dtype == np.uint8
  np.testing.assert_array_equal(out["truth_mask_bits"], np.packbits(np.asarray(_batch()["instance_masks"]).reshape(
      2, 3, -1) > 0, axis=-1))
  masks = two_stage_masks.unpack_masks(out["pred_mask_bits"], (SIZE, SIZE))
  assert not masks[~valid].any()
  evaluator = two_stage_masks.MaskDetectionEvaluator((SIZE, SIZE), 2)
  evaluator.update(out)
  metrics = evaluator.result()
  assert {"AP50", "VOC_AP50", "mask_AP", "mask_AP50"} <= set(metrics)
  assert metrics["picture_pred_masks"].shape == (2, d, SIZE, SIZE)


def test_predict_writes_picture_and_json_with_rle(trained, tmp_path):
  task, state, _ = trained
  path = tmp_path / "scene.png"
  Image.fromarray(np.asarray(_batch()["image"][0, ..., 0])).resize((128, 128)).save(path)
  lines = task.predict(state, [str(path)])
  assert len(lines) == 1 and (tmp_path / "scene.detections.png").stat().st_size > 0
  records = json.loads((tmp_path / "detections.json").read_text())
  assert isinstance(records, list)
  for r in records:
    assert len(r["bbox"]) == 4 and 0 <= r["category_id"] < 10 and 0 <= r["bbox"][0] <= 128
    assert ("segmentation" in r) == task.with_masks
    if task.with_masks:
      assert r["segmentation"]["size"] == [128, 128]
