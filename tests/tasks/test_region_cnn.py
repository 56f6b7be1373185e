"""R-CNN / Fast R-CNN: warping with context against SciPy, RoI targets and detections on hand-worked cases, the
host-callback proposals inside jit, the evaluation restricted to the examples in use, and each kind fitting
one tiny batch. (The loop parts run in tests/tasks/test_conformance.py.)"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import ndimage

from vision_jax import config_loading
from vision_jax.data import proposal_cache
from vision_jax.data.features import Feature, make_spec, object_features
from vision_jax.errors import ConfigError
from vision_jax.models.detectors import region_cnn as models
from vision_jax.tasks import region_cnn
from vision_jax.train_lib.state import TrainState

SIZE = 48
CONFIG = "configs/det_rcnn_classic_digits.py"


def _task(model_kind: str = "fast_rcnn", **section) -> region_cnn.RegionCNNTask:
  config = config_loading.load_config(f"{CONFIG}:kind={model_kind},smoke")
  config.region_cnn.update(section)
  features = {"image": Feature("image", (SIZE, SIZE, 1), "uint8"), **object_features(3, 2, ("a", "b"))}
  return region_cnn.RegionCNNTask(config, make_spec("toy", "train", 4, features))


def test_context_boxes_hand_worked():
  # A 24-pixel box with 4 of 32 pixels of context per side grows by 32 / 24 about its centre: 32 pixels.
  out = models.context_boxes(jnp.array([[10.0, 10, 34, 34], [0, 0, 12, 6]]), 32, 4)
  np.testing.assert_allclose(out, [[6, 6, 38, 38], [-2, -1, 14, 7]], rtol=1e-6)


def test_rcnn_warp_is_a_bilinear_crop_with_context():
  rng = np.random.default_rng(0)
  image = rng.random((2, SIZE, SIZE, 1)).astype(np.float32)
  rois = np.array([[[8.0, 10, 32, 30]], [[12.5, 6, 30, 40.5]]], np.float32)
  crop, context = 8, 1
  warped = np.asarray(models.RCNN(3, crop_size=crop, context=context).warp(jnp.asarray(image), jnp.asarray(rois)))
  for i in range(2):
    x1, y1, x2, y2 = rois[i, 0]
    grow = crop / (crop - 2 * context)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * grow, (y2 - y1) * grow
    # Sample j of `crop` sits at the centre of its bin; pixel k's value sits at coordinate k + 0.5.
    xs = cx - w / 2 + (np.arange(crop) + 0.5) * w / crop - 0.5
    ys = cy - h / 2 + (np.arange(crop) + 0.5) * h / crop - 0.5
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    expected = ndimage.map_coordinates(image[i, :, :, 0].astype(np.float64), [yy, xx], order=1)
    np.testing.assert_allclose(warped[i, :, :, 0], expected, atol=1e-5)


def test_roi_targets_hand_worked():
  task = _task(rois_per_image=8, positive_fraction=0.5)
  gt = jnp.array([[[10.0, 10, 30, 30], [0, 0, 0, 0], [0, 0, 0, 0]]])
  labels, valid = jnp.array([[1, 0, 0]]), jnp.array([[True, False, False]])
  proposals = jnp.array([[[10.0, 10, 30, 40],  # IoU 2/3: foreground
                          [20, 10, 40, 30],  # IoU 1/3: background
                          [40, 40, 47, 47],  # IoU 0: below 0.1, never sampled
                          [5, 5, 6, 6]]])  # padding
  targets = jax.device_get(jax.jit(task.roi_targets)(jax.random.PRNGKey(0), proposals,
                                                     jnp.array([[True, True, True, False]]), gt, labels, valid))
  sampled = targets.sampled[0]
  got = {tuple(b): int(l) for b, l in zip(targets.proposals[0][sampled].tolist(), targets.labels[0][sampled])}
  # The ground truth joins the proposals; labels are classes + 1 (0: background).
  assert got == {(10.0, 10.0, 30.0, 40.0): 2, (20.0, 10.0, 40.0, 30.0): 0, (10.0, 10.0, 30.0, 30.0): 2}
  row = int(np.flatnonzero((targets.proposals[0] == [10, 10, 30, 40]).all(1) & sampled)[0])
  # Deltas of gt (centre 20, 20, size 20 x 20) on the proposal (centre 20, 25, size 20 x 30), weights 10, 10, 5, 5.
  np.testing.assert_allclose(targets.regression_targets[0, row], [0.0, 10 * -5 / 30, 0.0, 5 * np.log(20 / 30)],
                             rtol=1e-5)


def test_pool_rois_keeps_only_sampled_rois_each_with_its_image():
  task = _task("rcnn", rois_per_batch=4)
  images = jnp.arange(3, dtype=jnp.float32)[:, None, None, None] * jnp.ones((3, 2, 2, 1))  # image i is all i
  rois = jnp.arange(3 * 2 * 4, dtype=jnp.float32).reshape(3, 2, 4)
  sampled = jnp.array([[True, False], [False, False], [True, True]])
  micro = {"inputs": (images, rois), "labels": jnp.array([[1, 2], [3, 4], [5, 0]]),
           "regression": rois * 10, "sampled": sampled}
  out = jax.device_get(jax.jit(task.pool_rois)(jax.random.PRNGKey(0), micro))
  pooled_images, pooled_rois = out["inputs"]
  assert pooled_rois.shape == (4, 1, 4) and pooled_images.shape == (4, 2, 2, 1)
  got = out["sampled"][:, 0]
  assert got.sum() == 3  # all three sampled RoIs, then one unsampled filler
  # Flat rows 0, 4, 5 were sampled: (image 0, label 1), (image 2, label 5), (image 2, label 0).
  kept = sorted((int(pooled_images[k, 0, 0, 0]), int(out["labels"][k, 0]), tuple(pooled_rois[k, 0]))
                for k in np.flatnonzero(got))
  assert kept == [(0, 1, (0.0, 1.0, 2.0, 3.0)), (2, 0, (20.0, 21.0, 22.0, 23.0)), (2, 5, (16.0, 17.0, 18.0, 19.0))]
  for k in range(4):
    np.testing.assert_array_equal(out["regression"][k, 0], pooled_rois[k, 0] * 10)


class _FixedHead(nn.Module):
  """Ignores its inputs: class logits favour class 2 (label 1) on RoI 0 and class 1 (label 0) on RoI 1;
  class 2's deltas move a box by one width to the right (dx = 10 with weight 10)."""

  @nn.compact
  def __call__(self, images, rois, train=False):
    n, r = rois.shape[:2]
    logits = jnp.zeros((n, r, 3)).at[:, 0, 2].set(8.0).at[:, 1, 1].set(8.0).at[:, 2:, 0].set(8.0)
    deltas = jnp.zeros((n, r, 3, 4)).at[:, :, 2, 0].set(10.0)
    return logits, deltas.reshape(n, r, 12)


def test_detect_decodes_class_specific_boxes_and_shifts_labels():
  task = _task(max_detections=4)
  task.model = _FixedHead()
  proposals = jnp.array([[[4.0, 4, 14, 20], [20, 20, 30, 30], [0, 0, 5, 5]]])
  detect = jax.jit(lambda *args: task.detect({}, *args)[1])
  found = jax.device_get(detect(jnp.zeros((1, SIZE, SIZE, 1)), proposals, jnp.array([[True, True, True]])))
  np.testing.assert_array_equal(found["pred_valid"][0], [True, True, False, False])
  p = np.exp(8.0) / (np.exp(8.0) + 2)  # softmax of (8, 0, 0)
  np.testing.assert_allclose(found["pred_scores"][0, :2], [p, p], rtol=1e-5)
  labels = found["pred_labels"][0, :2].tolist()
  boxes = {label: box for label, box in zip(labels, found["pred_boxes"][0, :2].tolist())}
  assert sorted(labels) == [0, 1]
  np.testing.assert_allclose(boxes[1], [14, 4, 24, 20], rtol=1e-5)  # moved one width right
  np.testing.assert_allclose(boxes[0], [20, 20, 30, 30], rtol=1e-5)  # class 1's deltas are zero


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
  """uint8 [SIZE, SIZE, 1] with one bright square (class 0) or a thin bar (class 1), and its box."""
  rng = np.random.default_rng(seed)
  image = np.zeros((SIZE, SIZE, 1), np.uint8)
  x, y = rng.integers(2, SIZE - 22, 2)
  w, h = (16, 16) if seed % 2 == 0 else (6, 18)
  image[y:y + h, x:x + w] = 255
  return image, np.array([x, y, x + w, y + h], np.float32)


def _batch(seeds, mask=None):
  scenes = [_scene(s) for s in seeds]
  boxes = np.zeros((len(seeds), 3, 4), np.float32)
  boxes[:, 0] = [b for _, b in scenes]
  labels = np.full((len(seeds), 3), -1, np.int32)
  labels[:, 0] = [s % 2 for s in seeds]
  batch = {"image": np.stack([i for i, _ in scenes]), "boxes": boxes, "box_labels": labels,
           "num_objects": np.ones(len(seeds), np.int32)}
  if mask is not None:
    batch["mask"] = np.asarray(mask)
  return {k: jnp.asarray(v) for k, v in batch.items()}


def _with_table(task, tmp_path, seeds, in_use=0):
  records = [{"image": _scene(s)[0]} for s in seeds]
  task._table = proposal_cache.ProposalTable(str(tmp_path), "toy", "single", int(task.cfg.num_proposals),
                                             {"train": (records, in_use)})
  return task


def test_proposals_come_through_the_host_callback_under_jit(tmp_path):
  task = _with_table(_task(num_proposals=6), tmp_path, [0, 1, 2], in_use=2)
  images = _batch([2, 0])["image"]
  boxes, valid, in_use = jax.device_get(jax.jit(task.proposals)(images))
  np.testing.assert_array_equal(in_use, [False, True])
  assert not valid[0].any()
  expected = proposal_cache.selective_search.selective_search(np.asarray(images[1]), mode="single", seed=0)[:6]
  np.testing.assert_array_equal(boxes[1, :len(expected)], expected)


def test_evaluation_counts_only_the_examples_in_use(tmp_path):
  task = _with_table(_task(num_proposals=6, max_detections=4), tmp_path, [0, 1, 2, 3], in_use=2)
  task.model = _FixedHead()
  state = TrainState.create({"model": {"params": {}}}, {"model": optax.sgd(0.1)}, jax.random.PRNGKey(0))
  out = jax.device_get(jax.jit(task.eval_step)(state, _batch([0, 1, 3, 2], mask=[True, True, True, False])))
  np.testing.assert_array_equal(out["mask"], [True, True, False, False])  # index 3 out of use, 2 padding
  assert out["count"] == 2
  assert out["pred_valid"][:2].any() and not out["pred_valid"][2:].any()
  # A batch with nothing in use skips the model and detects nothing.
  out = jax.device_get(jax.jit(task.eval_step)(state, _batch([2, 3], mask=[True, True])))
  assert out["count"] == 0 and not out["pred_valid"].any()


def test_config_mistakes_are_one_line():
  with pytest.raises(ConfigError, match="region_cnn.kind"):
    _task("fast_rcnn", kind="yolo")
  config = config_loading.load_config(f"{CONFIG}:smoke")
  config.input.augment = "flip_lr"
  features = {"image": Feature("image", (SIZE, SIZE, 1), "uint8"), **object_features(3, 2)}
  with pytest.raises(ConfigError, match="input.augment") as error:
    region_cnn.RegionCNNTask(config, make_spec("toy", "train", 4, features))
  assert "\n" not in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rcnn", "fast_rcnn"])
def test_each_kind_fits_a_tiny_batch(kind, tmp_path):
  seeds = list(range(4))
  task = _with_table(_task(kind, num_proposals=16, rois_per_image=16, width=8, fc_width=32), tmp_path, seeds)
  variables = task.init_variables(jax.random.PRNGKey(0))
  txs = {"model": optax.adam(3e-3)}
  state = TrainState.create(variables, txs, jax.random.PRNGKey(1))
  batch = _batch(seeds)
  step = jax.jit(lambda s, b: task.train_step(s, b, txs))
  losses = []
  for _ in range(40):
    state, metrics = step(state, batch)
    state = state.replace(step=state.step + 1)
    losses.append(float(metrics["loss"]))
  assert metrics["foreground"] > 0 and metrics["rois"] > metrics["foreground"]
  assert np.mean(losses[-5:]) < 0.4 * np.mean(losses[:5]), losses[::10]
