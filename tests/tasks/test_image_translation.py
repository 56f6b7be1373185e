"""The image_translation task: each mode's train step on tiny networks, its loss terms recomputed with NumPy from
the networks before the update; the eval sums (L1, PSNR of the output and of the bicubic/copy baseline) against
NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.tasks import in_process
from vision_jax import tasks
from vision_jax.data import datasets
from vision_jax.evaluation import generative
from vision_jax.tasks import image_translation
from vision_jax.train_lib.state import TrainState

TINY = {"translation__generator_features": "(8,)", "translation__discriminator_features": "(8,)",
        "translation__num_blocks": 1, "translation__dropout": 0.0, "translation__feature_net": ""}


def _setup(config_spec, dataset, **overrides):
  config = in_process.load_config(config_spec, **{**TINY, **overrides})
  _, spec = datasets.load(dataset, "test")
  task = tasks.get(config, spec)
  txs = {name: optax.adam(1e-3) for name in task.networks()}
  state = TrainState.create(jax.jit(task.init_variables)(jax.random.PRNGKey(0)), txs, jax.random.key_data(
      jax.random.PRNGKey(1)), task.init_extras(jax.random.PRNGKey(2)))
  source, _ = datasets.load(dataset, "test")
  batch = {k: np.stack([source[i][k] for i in range(4)]) for k in ("image", "image2")}
  return task, txs, state, batch


def _views(batch):
  return (batch["image"].astype(np.float32) / 255 - 0.5) / 0.5, (batch["image2"].astype(np.float32) / 255 - 0.5) / 0.5


def _changed(before, after, name):
  return any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before.params[name]),
                                                        jax.tree.leaves(after.params[name])))


def test_pix2pix_step_l1_term_and_updates():
  task, txs, state, batch = _setup("configs/gan_pix2pix.py:smoke", "digit_edges2digit")
  source, target = _views(batch)
  output = np.asarray(task.translate(state, jnp.asarray(source)))  # no dropout: the training output
  new, metrics = task.train_step(state, batch, txs)
  np.testing.assert_allclose(float(metrics["l1"]), 100 * np.mean(np.abs(output - target)), rtol=1e-4)
  assert set(metrics) == {"discriminator_loss", "generator_adversarial", "l1"}
  assert _changed(state, new, "generator") and _changed(state, new, "discriminator")


def test_srgan_step_pixel_and_content_terms():
  task, txs, state, batch = _setup("configs/gan_srgan.py:smoke", "digit_lowres2highres",
                                   translation__content_net="", translation__pixel_weight=2.0)
  source, target = _views(batch)
  assert source.shape[1:] == (14, 14, 1) and target.shape[1:] == (28, 28, 1)
  output = np.asarray(task.translate(state, jnp.asarray(source)))
  assert output.shape == target.shape  # one pixel-shuffle x2 block
  _, metrics = task.train_step(state, batch, txs)
  mse = np.mean((output - target) ** 2)
  np.testing.assert_allclose(float(metrics["pixel"]), 2 * mse, rtol=1e-4)
  np.testing.assert_allclose(float(metrics["content"]), mse, rtol=1e-4)  # no content network: pixel MSE


@pytest.fixture(scope="module")
def cyclegan():
  """(task, txs, state, batch) of the cyclegan smoke config (initialising its four networks is the slow part)."""
  return _setup("configs/gan_cyclegan.py:smoke", "digit_edges2digit")


def test_cyclegan_step_cycle_identity_terms_and_pools(cyclegan):
  task, txs, state, batch = cyclegan
  a, b = _views(batch)

  def g(name, x):
    return np.asarray(task._apply(name, state.params[name], jnp.asarray(x)))  # pylint: disable=protected-access

  # Means over the batch of per-example networks do not depend on the permutation that unpairs domain B.
  cycle = (np.mean(np.abs(g("generator_ba", g("generator", a)) - a))
           + np.mean(np.abs(g("generator", g("generator_ba", b)) - b)))
  identity = np.mean(np.abs(g("generator", b) - b)) + np.mean(np.abs(g("generator_ba", a) - a))
  new, metrics = task.train_step(state, batch, txs)
  np.testing.assert_allclose(float(metrics["cycle"]), 10 * cycle, rtol=1e-4)
  np.testing.assert_allclose(float(metrics["identity"]), 5 * identity, rtol=1e-4)
  assert all(_changed(state, new, n) for n in ("generator", "generator_ba", "discriminator", "discriminator_a"))
  assert int(new.extras["pool_a"]["count"]) == int(new.extras["pool_b"]["count"]) == 4
  assert new.extras["pool_b"]["images"].shape == (50, 28, 28, 1)


def test_eval_sums_match_numpy():
  task, _, state, batch = _setup("configs/gan_srgan.py:smoke", "digit_lowres2highres", translation__content_net="")
  batch = {**batch, "mask": np.array([True, True, True, False])}
  out = jax.device_get(task.eval_step(state, batch))
  source, target = _views(batch)
  output = np.asarray(task.translate(state, jnp.asarray(source)))
  bicubic = np.clip(np.asarray(jax.image.resize(jnp.asarray(source), (4, 28, 28, 1), "cubic")), -1, 1)
  for prefix, image in (("", output), ("baseline_", bicubic)):
    err01 = (image[:3] - target[:3]) / 2  # [0, 1] units
    np.testing.assert_allclose(out[prefix + "l1"], np.abs(err01).reshape(3, -1).mean(1).sum(), rtol=1e-4)
    psnr = 10 * np.log10(1 / (err01 ** 2).reshape(3, -1).mean(1))
    np.testing.assert_allclose(out[prefix + "psnr"], psnr.sum(), rtol=1e-4)
  assert float(out["count"]) == 3
  metrics = task.reduce_sums({k: out[k] for k in ("l1", "psnr", "baseline_l1", "baseline_psnr", "count")})
  assert metrics["num_examples"] == 3 and metrics["psnr"] == pytest.approx(float(out["psnr"]) / 3)


def test_psnr_of_a_known_error():
  target = jnp.zeros((1, 4, 4, 1))
  output = jnp.full((1, 4, 4, 1), 0.2)  # 0.1 in [0, 1] units: MSE 0.01, PSNR 20 dB
  assert float(image_translation.psnr_per_image(output, target)[0]) == pytest.approx(20.0, abs=1e-4)


def test_unpaired_eval_scores_fid_against_the_second_split_only(cyclegan):
  _, _, state, batch = cyclegan  # the same networks; this task evaluates unpaired domains
  config = in_process.load_config("configs/gan_cyclegan.py:smoke", **{**TINY, "dataset__eval_split2": "testB",
                                                                      "translation__feature_net": "pixels"})
  task = tasks.get(config, datasets.load("digit_edges2digit", "test")[1])
  assert task.best_metric == ("fid", "min")
  batch = {**batch, "mask": np.array([True, True, True, False]), "mask2": np.array([True, True, False, False])}
  out = jax.device_get(jax.jit(task.eval_step)(state, batch))
  assert not {"l1", "psnr", "baseline_l1", "baseline_psnr"} & set(out)
  _, target = _views(batch)
  output = out["sample_output"]  # the generator's output for every row of the batch
  features = lambda x: np.asarray(task.features(jnp.asarray(x))[0], np.float64)  # noqa: E731  (7x7 pooled pixels)
  assert float(out["real_count"]) == 2 and float(out["fake_count"]) == float(out["copy_count"]) == 3
  np.testing.assert_allclose(out["real_sum"], features(target[:2]).sum(0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out["fake_sum"], features(output[:3]).sum(0), rtol=1e-4, atol=1e-5)
  evaluators = task.evaluators()
  for evaluator in evaluators:
    evaluator.reset()
    evaluator.update(out)
  metrics = {k: v for e in evaluators for k, v in e.result().items()}
  assert {"fid", "baseline_fid", "sample_output"} <= set(metrics) and "psnr" not in metrics


def test_paired_eval_gathers_features_for_kid_and_precision_recall():
  task, _, state, batch = _setup("configs/gan_pix2pix.py:smoke", "digit_edges2digit",
                                 translation__feature_net="pixels")
  batch = {**batch, "mask": np.array([True, True, True, False])}
  out = jax.device_get(jax.jit(task.eval_step)(state, batch))
  _, target = _views(batch)
  features = lambda x: np.asarray(task.features(jnp.asarray(x))[0])  # noqa: E731  (7x7 pooled pixels)
  np.testing.assert_allclose(out["real_features"], features(target), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out["fake_features"], features(out["sample_output"]), rtol=1e-4, atol=1e-5)
  gather = [e for e in task.evaluators() if "real_features" in getattr(e, "keys", ())][0]
  gather.reset()
  gather.update(out)
  gather.update(out)  # two batches: six valid rows (the padding row is dropped)
  metrics = gather.result()
  real, fake = np.concatenate([out["real_features"][:3]] * 2), np.concatenate([out["fake_features"][:3]] * 2)
  kid, _ = generative.kernel_distance(real.astype(np.float64), fake.astype(np.float64), 10, 6)
  assert metrics["kid"] == pytest.approx(kid, rel=1e-5)
  assert set(metrics) == {"kid", "kid_std", "precision", "recall"}
