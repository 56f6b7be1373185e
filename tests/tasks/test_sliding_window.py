"""The sliding-window task's context crops, mined hard negatives and IoU targets (NumPy and hand references)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.tasks import in_process
from vision_jax.data import digit_scenes
from vision_jax.data.features import make_spec, object_features, Feature
from vision_jax.tasks import sliding_window

BOXES = np.array([[[10, 10, 26, 40], [50, 40, 90, 70], [0, 0, 0, 0]],
                  [[30, 20, 50, 44], [0, 0, 0, 0], [0, 0, 0, 0]]], np.float32)
BATCH = {"boxes": BOXES, "box_labels": np.array([[4, 9, -1], [2, -1, -1]], np.int32),
         "num_objects": np.array([2, 1], np.int32)}


@pytest.fixture(scope="module")
def task():
  features = {"image": Feature("image", (96, 96, 1), "uint8"), **object_features(3, 10, digit_scenes.CLASS_NAMES)}
  spec = make_spec("digit_scenes", "train", 4, features)
  config = in_process.load_config(
      "configs/sliding_window_digits.py:smoke,context=8,mined=5,iou,widths=4-6,hidden=8,sides=28-56")
  return sliding_window.SlidingWindowTask(config, spec)


def _numpy_best_iou(windows, boxes, count):
  """Best IoU [S] of windows [S, 4] with the ideal windows (1.25 x the longer side, centred) of boxes[:count]."""
  centre = (boxes[:count, :2] + boxes[:count, 2:]) / 2
  half = 1.25 * (boxes[:count, 2:] - boxes[:count, :2]).max(1, keepdims=True) / 2
  ideal = np.concatenate([centre - half, centre + half], 1).astype(np.float64)
  windows = windows.astype(np.float64)
  lt = np.maximum(windows[:, None, :2], ideal[None, :, :2])
  rb = np.minimum(windows[:, None, 2:], ideal[None, :, 2:])
  inter = np.prod(np.clip(rb - lt, 0, None), -1)
  area = lambda b: np.prod(b[:, 2:] - b[:, :2], -1)
  return (inter / (area(windows)[:, None] + area(ideal)[None] - inter)).max(1)


def test_context_crop_hand_values(task):
  rows, cols = np.mgrid[0:96, 0:96].astype(np.float32)
  images = jnp.asarray((cols + 100 * rows)[None, :, :, None])  # linear, so bilinear samples are exact
  crops = np.asarray(task.crops(images, jnp.array([[[30.0, 20.0, 58.0, 48.0]]])))
  assert crops.shape == (1, 44, 44, 1)
  # Window side 28, context 8 of 28 on each side: the box [22, 12, 66, 56] in 44 bins of 1 px, one sample per bin
  # at its centre, (start - 0.5 + k + 0.5) (aligned).
  k = np.arange(44, dtype=np.float32)
  np.testing.assert_allclose(crops[0, :, :, 0], (22 + k)[None, :] + 100 * (12 + k)[:, None], rtol=1e-6)


def test_iou_targets_and_mined_negatives(task):
  @jax.jit
  def run(rng):
    params = task.model.init(rng, *task.example_inputs("model"))["params"]
    images = jax.random.normal(jax.random.fold_in(rng, 1), (2, 96, 96, 1))
    return (task.sample_windows(jax.random.fold_in(rng, 2), BATCH), task.dense_windows(params, images),
            task.mine_negatives(params, images, BATCH))

  targets, dense, mined = jax.device_get(run(jax.random.PRNGKey(0)))
  assert mined["windows"].shape == (2, 5, 4) and np.all(mined["labels"] == 10) and np.all(mined["weights"] == 1)
  assert np.all(mined["positive"] == 0)
  for n in range(2):
    count = BATCH["num_objects"][n]
    np.testing.assert_allclose(targets["iou"][n], _numpy_best_iou(targets["windows"][n], BOXES[n], count), atol=1e-5)
    best = _numpy_best_iou(dense["windows"][n], BOXES[n], count)
    background_scores = np.sort(dense["scores"][n][best < 0.5])[::-1]
    np.testing.assert_allclose(np.sort(_scores_of(dense, n, mined["windows"][n]))[::-1], background_scores[:5])
    np.testing.assert_allclose(mined["iou"][n], _numpy_best_iou(mined["windows"][n], BOXES[n], count), atol=1e-5)
    assert np.all(mined["iou"][n] < 0.5)


def _scores_of(dense, n, windows):
  """Scores of the dense windows equal to `windows` (each must be one of them)."""
  match = np.all(np.abs(dense["windows"][n][None] - windows[:, None]) < 1e-4, -1)  # [k, P]
  assert np.all(match.any(1))
  return dense["scores"][n][match.argmax(1)]


def test_iou_loss_is_binary_cross_entropy_of_the_soft_target(task):
  outputs = {"logits": jnp.zeros((2, 11)), "box": jnp.zeros((2, 4)), "iou": jnp.array([0.0, 2.0])}
  targets = {"labels": jnp.array([10, 3]), "weights": jnp.ones(2), "positive": jnp.array([0.0, 1.0]),
             "box_codes": jnp.zeros((2, 4)), "iou": jnp.array([0.3, 1.0])}
  parts = jax.device_get(jax.jit(task.window_losses)(outputs, targets))
  np.testing.assert_allclose(parts["iou_loss"], [np.log(2.0), np.log1p(np.exp(-2.0))], rtol=1e-5)

