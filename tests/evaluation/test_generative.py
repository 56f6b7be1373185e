"""FID, KID and precision/recall against pytorch-fid / torchmetrics fixtures (tests/fixtures/gan/
make_metric_fixtures.py) and hand-worked cases; FID on the committed digit feature network behaves sanely
(real vs real near 0, monotone in added noise and blur)."""

import os

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from vision_jax.evaluation import feature_nets, generative
from vision_jax.evaluation.feature_nets import train as feature_train

FIXTURES = np.load(os.path.join(os.path.dirname(__file__), "..", "fixtures", "gan", "metric_fixtures.npz"),
                   allow_pickle=False)


def test_frechet_distance_matches_pytorch_fid_and_torchmetrics():
  got = generative.frechet_distance_of_features(FIXTURES["real"], FIXTURES["fake"])
  np.testing.assert_allclose(got, FIXTURES["fid_pytorch_fid"], rtol=1e-9)
  np.testing.assert_allclose(got, FIXTURES["fid_torchmetrics"], rtol=1e-9)


def test_frechet_distance_with_a_singular_covariance_matches_pytorch_fid():
  got = generative.frechet_distance_of_features(FIXTURES["real"], FIXTURES["low_rank"])
  np.testing.assert_allclose(got, FIXTURES["fid_low_rank_pytorch_fid"], rtol=1e-6)


def test_frechet_evaluator_from_batched_sums_matches_the_fixture():
  real, fake = FIXTURES["real"].astype(np.float32), FIXTURES["fake"].astype(np.float32)
  evaluator = generative.frechet_evaluator()
  evaluator.reset()
  for start in range(0, 300, 128):  # uneven batches, padded to 128 rows with zero weights
    r, f = real[start:start + 128], fake[start:start + 128]
    weights_r = np.pad(np.ones(len(r), np.float32), (0, 128 - len(r)))
    weights_f = np.pad(np.ones(len(f), np.float32), (0, 128 - len(f)))
    outputs = {**generative.feature_sums(jnp.asarray(np.pad(r, ((0, 128 - len(r)), (0, 0)), constant_values=9)),
                                         jnp.asarray(weights_r), "real"),
               **generative.feature_sums(jnp.asarray(np.pad(f, ((0, 128 - len(f)), (0, 0)), constant_values=9)),
                                         jnp.asarray(weights_f), "fake")}
    evaluator.update({k: np.asarray(v) for k, v in outputs.items()})
  # float32 sums on device: agreement to float32 round-off of the moments.
  np.testing.assert_allclose(evaluator.result()["fid"], FIXTURES["fid_pytorch_fid"], rtol=1e-4)


def test_frechet_distance_of_hand_worked_gaussians():
  # 1-D: (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2) = (sqrt(s1) - sqrt(s2))^2 + (m1 - m2)^2 = 1 + 4.
  np.testing.assert_allclose(generative.frechet_distance([0.0], [[1.0]], [2.0], [[4.0]]), 5.0, rtol=1e-12)
  # Identical Gaussians: 0.
  cov = np.array([[2.0, 0.5], [0.5, 1.0]])
  assert generative.frechet_distance([1.0, 2.0], cov, [1.0, 2.0], cov) == pytest.approx(0.0, abs=1e-9)


def test_kernel_distance_with_one_full_subset_matches_torchmetrics():
  real, fake = FIXTURES["real"], FIXTURES["fake"]
  mean, std = generative.kernel_distance(real[:250], fake, num_subsets=1, subset_size=10_000)
  np.testing.assert_allclose(mean, FIXTURES["kid_full_torchmetrics"], rtol=1e-9)
  assert std == 0.0


def test_kernel_distance_of_one_distribution_is_near_zero_and_grows_with_a_shift():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
  same = generative.kernel_distance(a, b, num_subsets=5, subset_size=200)[0]
  shifted = generative.kernel_distance(a, b + 0.5, num_subsets=5, subset_size=200)[0]
  assert abs(same) < 0.02 < shifted


def test_precision_recall_hand_worked():
  # Real points 0, 1, 2, 10 on a line with k = 1: radii 1, 1, 1, 8 (10's nearest is 2).
  # Fake points 0.5, 5, 30 -> 0.5 is inside (ball of 0), 5 inside 10's ball [2, 18], 30 outside: precision 2/3.
  # Fake radii (k = 1): 0.5 -> 4.5, 5 -> 4.5, 30 -> 25; real 0, 1, 2 lie within 4.5 of 0.5; 10 within 25 of 30.
  real = np.array([[0.0], [1.0], [2.0], [10.0]])
  fake = np.array([[0.5], [5.0], [30.0]])
  precision, recall = generative.precision_recall(real, fake, k=1)
  assert precision == pytest.approx(2 / 3)
  assert recall == pytest.approx(1.0)
  precision, recall = generative.precision_recall(real, np.array([[100.0], [101.0], [102.0]]), k=1)
  assert (precision, recall) == (0.0, 0.0)


@pytest.fixture(scope="module")
def digits_features():
  """Feature function of the committed digits network and the 2,000 held-out digits in [-1, 1]."""
  net = feature_nets.load("mnist_embedded")
  images, labels = feature_train.split_arrays("mnist_embedded", "test")
  images = feature_train.to_model_range(images)

  def features(x):
    return np.concatenate([np.asarray(net(jnp.asarray(x[i:i + 500]))[0]) for i in range(0, len(x), 500)])

  return net, features, images, labels


def test_feature_network_accuracy_on_held_out_digits(digits_features):
  net, _, images, labels = digits_features
  predictions = np.argmax(np.asarray(net(jnp.asarray(images[:1000]))[1]), -1)
  accuracy = np.mean(predictions == labels[:1000])
  assert accuracy > 0.95 and net.test_accuracy > 0.95


def test_fid_is_near_zero_for_real_vs_real_and_rises_with_noise_and_blur(digits_features):
  _, features, images, _ = digits_features
  first, second = images[:1000], images[1000:]
  reference = features(first)
  fid = lambda x: generative.frechet_distance_of_features(reference, features(x.astype(np.float32)))
  real_vs_real = fid(second)
  rng = np.random.default_rng(0)
  uniform_noise = fid(rng.uniform(-1, 1, second.shape))  # the scale: images with no digit at all
  noisy = [fid(np.clip(second + rng.normal(0, s, second.shape), -1, 1)) for s in (0.25, 0.5, 1.0)]
  blurred = [fid(ndimage.gaussian_filter(second, (0, s, s, 0))) for s in (0.6, 1.2, 2.0)]
  # Two disjoint 1,000-digit halves differ only by sampling: a few units against ~1e3 for noise images.
  assert real_vs_real < 0.01 * uniform_noise and real_vs_real < 0.5 * min(noisy[0], blurred[0]), (
      real_vs_real, uniform_noise, noisy, blurred)
  assert noisy == sorted(noisy) and blurred == sorted(blurred), (noisy, blurred)
