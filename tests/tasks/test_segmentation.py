"""The segmentation task on a tiny synthetic mask dataset: masks move with augmented pixels, the eval step's
confusion matrix and loss against NumPy, metrics of a hand-worked confusion matrix, reports, predict's indexed
PNGs, config errors."""

import json
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from PIL import Image

from vision_jax.configs import common
from vision_jax.data.features import IGNORE_INDEX, Feature, make_spec
from vision_jax.errors import ConfigError
from vision_jax.evaluation import evaluators
from vision_jax.tasks import segmentation
from vision_jax.train_lib.state import TrainState

SIZE, CLASSES = 16, 3
NAMES = ("bg", "a", "b")


def _spec(with_mask=True):
  features = {"image": Feature("image", (SIZE, SIZE, 1), "uint8")}
  if with_mask:
    features["semantic_mask"] = Feature("mask", (SIZE, SIZE), "uint8", CLASSES, NAMES)
  else:
    features["label"] = Feature("label", (), "int32", 2, ("x", "y"))
  return make_spec("toy_masks", "train", 8, features)


def _config(**segmentation_section):
  config = common.base_config()
  config.task = "segmentation"
  config.model.name = "unet_small_same"
  config.model.kwargs = ml_collections.ConfigDict({"depth": 2, "width": 4})
  config.input.preprocess = "to_float"
  config.input.normalize = "normalize(mean=0.5, std=0.5)"
  config.segmentation = ml_collections.ConfigDict(segmentation_section)
  return config


def _batch(seed=0, n=4):
  """Masks of random rectangles of classes 1, 2 on 0, some pixels unlabelled; image = 80 x class (0 unlabelled)."""
  rng = np.random.default_rng(seed)
  masks = np.zeros((n, SIZE, SIZE), np.uint8)
  for i in range(n):
    for cls in (1, 2):
      y, x = rng.integers(0, SIZE - 5, 2)
      masks[i, y:y + 5, x:x + 6] = cls
  masks[:, 0, :3] = IGNORE_INDEX
  images = (80 * np.where(masks == IGNORE_INDEX, 0, masks)).astype(np.uint8)[..., None]
  return {"image": jnp.asarray(images), "semantic_mask": jnp.asarray(masks)}


@pytest.fixture(scope="module")
def task_and_state():
  task = segmentation.SegmentationTask(_config(class_weights="1,2,0.5"), _spec())
  rng = np.random.default_rng(0)  # NumPy draws instead of a compiled init (batch-norm variances kept positive)
  variables = jax.tree.map(lambda v: jnp.asarray(np.abs(rng.normal(0, 0.3, v.shape)).astype(np.float32) + 0.1)
                           if v.ndim == 1 else jnp.asarray(rng.normal(0, 0.3, v.shape).astype(np.float32)),
                           jax.eval_shape(task.init_variables, jax.random.key(0)))
  state = TrainState.create(variables, {"model": optax.sgd(0.1)}, jax.random.key(1))
  return task, state


def test_augmentation_moves_masks_with_the_pixels():
  config = _config()
  config.input.augment = "pad_crop(pad=4)|flip_lr"
  task = segmentation.SegmentationTask(config, _spec())
  batch = _batch(n=8)
  images, labels = jax.jit(lambda r: task.prepare(r, batch["image"], batch["semantic_mask"], True))(
      jax.random.key(3))
  pixel_class = np.rint((np.asarray(images)[..., 0] * 0.5 + 0.5) * 255 / 80).astype(int)
  labels = np.asarray(labels)
  labelled = labels != IGNORE_INDEX
  assert labelled.mean() < 0.99  # the crop brought in padding, which is unlabelled
  np.testing.assert_array_equal(labels[labelled], pixel_class[labelled])
  moved = [not np.array_equal(labels[i], np.asarray(batch["semantic_mask"][i])) for i in range(8)]
  assert any(moved)


def _numpy_confusion_and_loss(logits, labels, valid_examples, class_weights):
  confusion = np.zeros((CLASSES, CLASSES), np.int64)
  weighted_nll, weight_sum = 0.0, 0.0
  logits = np.asarray(logits, np.float64)
  log_probs = logits - logits.max(-1, keepdims=True)
  log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
  for i in valid_examples:
    for r in range(SIZE):
      for c in range(SIZE):
        y = int(labels[i, r, c])
        if y == IGNORE_INDEX:
          continue
        confusion[y, int(np.argmax(logits[i, r, c]))] += 1
        weighted_nll -= class_weights[y] * log_probs[i, r, c, y]
        weight_sum += class_weights[y]
  return confusion, weighted_nll / weight_sum


def test_eval_step_counts_labelled_pixels_of_real_examples(task_and_state):
  task, state = task_and_state
  batch = _batch(seed=1)
  batch["mask"] = jnp.array([True, True, False, True])  # the third example is padding
  out = jax.jit(task.eval_step)(state, batch)
  inputs = (np.asarray(batch["image"], np.float32) / 255 - 0.5) / 0.5
  logits = jax.jit(task.model.apply)(state.variables("model"), inputs)
  confusion, loss = _numpy_confusion_and_loss(logits, np.asarray(batch["semantic_mask"]), [0, 1, 3], (1, 2, 0.5))
  np.testing.assert_array_equal(np.asarray(out["confusion"]), confusion)
  assert float(out["count"]) == 3
  assert math.isclose(float(out["loss"]) / 3, loss, rel_tol=1e-5)


def test_metrics_of_a_hand_worked_confusion_matrix_and_the_report(task_and_state, tmp_path):
  task, _ = task_and_state
  confusion = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # class "b" never appears: skipped by the mean
  metrics = task.reduce_eval({"loss": np.float64(6.0), "count": np.float64(3), "confusion": confusion})
  assert math.isclose(metrics["mean_iou"], (5 / 8 + 3 / 6) / 2)
  assert math.isclose(metrics["pixel_accuracy"], 8 / 11)
  assert math.isclose(metrics["mean_dice"], (10 / 13 + 6 / 9) / 2)
  assert metrics["loss"] == 2.0 and metrics["num_examples"] == 3
  rng = np.random.default_rng(0)
  metrics.update(grid_image=rng.integers(0, 255, (2, SIZE, SIZE, 1), dtype=np.uint8),
                 grid_prediction=rng.integers(0, 3, (2, SIZE, SIZE), dtype=np.uint8),
                 grid_truth=np.full((2, SIZE, SIZE), IGNORE_INDEX, np.uint8))
  summary = {}
  paths = task.write_reports(str(tmp_path), metrics, summary)
  assert [p.split("/")[-1] for p in paths] == ["segmentation_grid.png"]
  assert Image.open(paths[0]).size[0] > 100
  table = json.loads(json.dumps(summary["per_class"]))  # JSON-ready: no NaN
  assert table["a"] == {"iou": 0.5, "dice": round(6 / 9, 6), "pixels": 5}
  assert table["b"] == {"iou": None, "dice": None, "pixels": 0}


def test_first_examples_evaluator_keeps_the_first_valid_rows():
  evaluator = evaluators.FirstExamplesEvaluator(("x",), 3)
  evaluator.update({"x": np.arange(4), "mask": np.array([1, 0, 1, 0])})
  evaluator.update({"x": np.arange(10, 14), "mask": np.array([1, 1, 1, 1])})
  np.testing.assert_array_equal(evaluator.result()["grid_x"], [0, 2, 10])


def test_train_steps_lower_the_loss_on_a_fixed_batch(task_and_state):
  task, state = task_and_state
  batch = _batch(seed=2)
  txs = {"model": optax.adam(1e-2)}
  state = TrainState.create({"model": state.variables("model")}, txs, jax.random.key(1))
  step = jax.jit(lambda s: task.train_step(s, batch, txs))
  losses = []
  for _ in range(8):
    state, metrics = step(state)
    losses.append(float(metrics["loss"]))
  assert losses[-1] < 0.8 * losses[0], losses


def test_predict_writes_indexed_masks_and_overlays(task_and_state, tmp_path):
  task, state = task_and_state
  (tmp_path / "images").mkdir()
  (tmp_path / "masks").mkdir()
  batch = _batch(seed=4, n=1)
  image = np.asarray(batch["image"])[0, :, :, 0]
  Image.fromarray(image).save(tmp_path / "images" / "x.png")
  Image.fromarray(np.asarray(batch["semantic_mask"])[0]).save(tmp_path / "masks" / "x.png")
  task.settings["predict_dir"] = str(tmp_path / "out")
  lines = task.predict(state, [str(tmp_path / "images" / "x.png")])
  assert len(lines) == 1 and "x.png" in lines[0]
  mask = Image.open(tmp_path / "out" / "x_mask.png")
  assert mask.mode == "P"
  inputs = (image[None, :, :, None].astype(np.float32) / 255 - 0.5) / 0.5
  expected = np.argmax(np.asarray(jax.jit(task.model.apply)(state.variables("model"), inputs))[0], -1)
  np.testing.assert_array_equal(np.asarray(mask), expected)
  assert (tmp_path / "out" / "x_overlay.png").stat().st_size > 0


@pytest.mark.parametrize("section,spec,message", [
    ({"loss_weights": {"cross_entropy": 1.0, "lovasz": 1.0}}, True, "unknown or unweighted segmentation loss"),
    ({"class_weights": "1,2"}, True, "has 2 values for 3 classes"),
    ({"colour": "red"}, True, "unknown config.segmentation key"),
    ({}, False, "needs per-pixel masks"),
])
def test_config_mistakes_are_one_line_errors(section, spec, message):
  with pytest.raises(ConfigError, match=message) as error:
    segmentation.SegmentationTask(_config(**section), _spec(with_mask=spec))
  assert "\n" not in str(error.value)
