"""Cutout, mixup and cutmix: label mixing, pasted areas, soft targets in the classification task, a run."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.training import harness
from vision_jax import config_loading, tasks
from vision_jax.data import augment
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError, DataError

KEY = jax.random.PRNGKey(0)
CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs",
                      "digits_augmented.py")
N, K = 16, 16
# Built once: each pipeline compiles once (Beta sampling is slow to compile) and serves every test below.
MIXUP, CUTMIX = augment.build("mixup(alpha=0.4)"), augment.build("cutmix(alpha=1.0)")


def _constant_batch(h=10, w=12):
  """Image i is filled with the value i and labelled i, so every pixel and target weight names its source."""
  images = jnp.broadcast_to(jnp.arange(N, dtype=jnp.float32)[:, None, None, None], (N, h, w, 1))
  return images, jax.nn.one_hot(jnp.arange(N), K)


@pytest.fixture(scope="module")
def mixed():
  images, targets = _constant_batch()
  return {name: pipeline.apply(jax.random.PRNGKey(3), images, targets=targets)
          for name, pipeline in (("mixup", MIXUP), ("cutmix", CUTMIX))}


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixed_target_rows_sum_to_one(mixed, name):
  t = np.asarray(mixed[name].targets)
  np.testing.assert_allclose(np.sum(t, axis=1), 1.0, atol=1e-6)
  assert np.all(t >= 0) and not np.allclose(t, np.eye(N))


def test_mixup_blends_pixels_with_the_target_weights(mixed):
  out = mixed["mixup"]
  t = np.asarray(out.targets)
  # Value of image i = lambda * i + (1 - lambda) * partner = the target-weighted mean of the class indices.
  np.testing.assert_allclose(np.asarray(out.images)[:, 0, 0, 0], t @ np.arange(K), atol=1e-4)
  assert np.all(np.ptp(np.asarray(out.images), axis=(1, 2, 3)) < 1e-5)  # uniform blend over the image


def test_cutmix_weight_is_the_pasted_area_fraction(mixed):
  pixels, t = np.asarray(mixed["cutmix"].images)[..., 0], np.asarray(mixed["cutmix"].targets)
  checked = 0
  for i in range(N):
    own = np.mean(pixels[i] == i)
    np.testing.assert_allclose(t[i, i], own, atol=1e-6)  # also when the partner is the example itself
    others = set(np.unique(pixels[i])) - {i}
    if others:  # the partner differs from the example: the pasted pixels form one rectangle of its value
      (partner,) = others
      rows, cols = np.nonzero(pixels[i] == partner)
      assert len(rows) == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
      np.testing.assert_allclose(t[i, int(partner)], 1 - own, atol=1e-6)
      checked += 1
  assert checked >= N // 2


def test_cutout_fills_one_clipped_square_and_p_zero_is_the_identity():
  images = jnp.ones((N, 12, 12, 2))
  out = np.asarray(augment.build("cutout(size=4)")(KEY, images))
  for image in out:
    rows, cols = np.nonzero(image[:, :, 0] == 0)
    assert 0 < len(rows) <= 16 and len(rows) == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
    assert np.ptp(rows) + 1 == 4 or rows.min() == 0 or rows.max() == 11
  np.testing.assert_array_equal(augment.build("cutout(size=4, p=0.0)").apply(KEY, images).images, images)


def test_mixing_is_deterministic_by_seed_under_jit():
  images, targets = _constant_batch()
  run = CUTMIX.apply  # jitted inside
  a, b = run(KEY, images, targets=targets), run(KEY, images, targets=targets)
  np.testing.assert_array_equal(a.targets, b.targets)
  assert not np.array_equal(a.targets, run(jax.random.PRNGKey(1), images, targets=targets).targets)


def test_mixing_needs_targets_and_refuses_boxes():
  images, targets = _constant_batch()
  with pytest.raises(ConfigError, match="mixes labels"):
    augment.build("flip_lr|mixup")(KEY, images)
  with pytest.raises(ConfigError, match="needs targets"):
    augment.build("cutmix").apply(KEY, images)
  with pytest.raises(DataError, match="cannot carry boxes"):
    augment.build("mixup").apply(KEY, images, boxes=jnp.zeros((N, 1, 4)), targets=targets)
  with pytest.raises(ConfigError):
    augment.build("mixup(alpha=0)")


def _task(augment_spec):
  config = config_loading.load_config(CONFIG)
  config.input.augment = augment_spec
  config.loss.label_smoothing = 0.1
  spec = DatasetSpec("mnist_embedded", "train", 100, (28, 28, 1), 10, tuple(map(str, range(10))))
  return tasks.get(config, spec)


def test_classification_targets_are_smoothed_then_mixed():
  raw = jnp.asarray(np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1)), jnp.uint8)
  labels = jnp.arange(8) % 10
  smoothed = 0.9 * np.eye(10)[labels] + 0.1 / 10
  mixed = np.asarray(_task("flip_lr|mixup(alpha=0.4)").train_inputs(KEY, raw, labels)[1])
  np.testing.assert_allclose(mixed.sum(1), 1.0, atol=1e-6)
  assert mixed.min() >= 0.01 - 1e-7 and not np.allclose(mixed, smoothed)  # mixing keeps smoothing's floor
  plain = _task("flip_lr")
  images, targets = plain.train_inputs(KEY, raw, labels)
  np.testing.assert_allclose(targets, smoothed, atol=1e-6)
  np.testing.assert_array_equal(images, plain.prepare_images(KEY, raw, train=True))


def test_mixup_run_through_main(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  result = harness.run_main(data_dir, f"--config={CONFIG}:mix=mixup,smoke", f"--workdir={workdir}",
                            "--config.num_train_steps=2", "--config.dataset.eval_split=test[:64]",
                            "--config.input.eval_batch_size=64", *harness.TINY[:1])
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["steps"] == 2 and np.isfinite(summary["final_eval"]["loss"])
