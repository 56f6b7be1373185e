"""Segmentation losses against NumPy float64 references and PyTorch / torchvision outputs
(tests/fixtures/segmentation/torch_segmentation.npz, made by make_torch_fixtures.py there)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.errors import ConfigError
from vision_jax.losses import segmentation as seg

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "segmentation", "torch_segmentation.npz")


@pytest.fixture(scope="module")
def torch_ref():
  return np.load(FIXTURE, allow_pickle=False)


def random_case(seed=0, n=3, h=5, w=6, k=4, ignore_fraction=0.25):
  rng = np.random.default_rng(seed)
  logits = (2 * rng.normal(size=(n, h, w, k))).astype(np.float32)
  labels = rng.integers(0, k, size=(n, h, w)).astype(np.int32)
  labels[rng.random(labels.shape) < ignore_fraction] = 255
  return logits, labels


def np_log_softmax(logits):
  logits = logits.astype(np.float64)
  shifted = logits - logits.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def np_true_log_prob(logits, labels):
  log_probs = np_log_softmax(logits)
  valid = labels != 255
  safe = np.where(valid, labels, 0)
  return np.take_along_axis(log_probs, safe[..., None], -1)[..., 0], valid


def np_cross_entropy(logits, labels, class_weights=None):
  log_p, valid = np_true_log_prob(logits, labels)
  weight = valid * (1.0 if class_weights is None else np.asarray(class_weights, np.float64)[np.where(valid, labels, 0)])
  return (weight * -log_p).sum() / weight.sum()


def np_overlap(logits, labels, k, per_image):
  log_probs = np_log_softmax(logits)
  valid = (labels != 255)[..., None]
  probs = np.exp(log_probs) * valid
  truth = (labels[..., None] == np.arange(k)) * valid
  axes = (1, 2) if per_image else (0, 1, 2)
  return (probs * truth).sum(axes), probs.sum(axes), truth.sum(axes)


def test_cross_entropy_matches_numpy_and_pytorch(torch_ref):
  logits, labels = random_case()
  weights = np.array([0.5, 2.0, 1.0, 3.0], np.float32)
  np.testing.assert_allclose(seg.pixel_cross_entropy(logits, labels), np_cross_entropy(logits, labels), rtol=1e-5)
  np.testing.assert_allclose(seg.pixel_cross_entropy(logits, labels, weights),
                             np_cross_entropy(logits, labels, weights), rtol=1e-5)
  ce_logits, ce_labels = torch_ref["ce_logits"], torch_ref["ce_labels"]
  assert (ce_labels == 255).any()
  weighted = seg.pixel_cross_entropy(ce_logits, ce_labels.astype(np.uint8), torch_ref["ce_weights"])
  plain = seg.pixel_cross_entropy(ce_logits, ce_labels)
  np.testing.assert_allclose(weighted, torch_ref["ce_out_weighted"], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(plain, torch_ref["ce_out_plain"], rtol=1e-6, atol=1e-6)
  # the weighted mean is not the plain mean: the fixture exercises the weights
  assert abs(float(torch_ref["ce_out_weighted"]) - float(torch_ref["ce_out_plain"])) > 1e-3


def test_cross_entropy_masks_padded_examples_and_empty_batches():
  logits, labels = random_case(1)
  mask = np.array([1, 0, 1], np.float32)
  np.testing.assert_allclose(seg.pixel_cross_entropy(logits, labels, example_mask=mask),
                             np_cross_entropy(logits[[0, 2]], labels[[0, 2]]), rtol=1e-5)
  assert float(seg.pixel_cross_entropy(logits, np.full_like(labels, 255))) == 0.0


def test_focal_loss_matches_numpy_pytorch_and_cross_entropy(torch_ref):
  logits, labels = random_case(2)
  log_p, valid = np_true_log_prob(logits, labels)
  alpha = np.array([0.25, 0.5, 0.75, 1.0])
  per_pixel = -alpha[np.where(valid, labels, 0)] * (1 - np.exp(log_p)) ** 2 * log_p
  np.testing.assert_allclose(seg.focal_loss(logits, labels, 2.0, alpha), per_pixel[valid].mean(), rtol=1e-5)
  np.testing.assert_allclose(seg.focal_loss(logits, labels, 0.0), np_cross_entropy(logits, labels), rtol=1e-5)
  np.testing.assert_allclose(seg.focal_loss(logits, labels, 2.0, 0.5),
                             0.5 * (-(1 - np.exp(log_p)) ** 2 * log_p)[valid].mean(), rtol=1e-5)
  np.testing.assert_allclose(seg.focal_loss(torch_ref["ce_logits"], torch_ref["ce_labels"], 2.0,
                                            torch_ref["focal_alpha"]), torch_ref["focal_out"], rtol=1e-5)


def test_sigmoid_focal_loss_matches_torchvision(torch_ref):
  logits, targets = torch_ref["sfocal_logits"], torch_ref["sfocal_targets"]
  out = seg.sigmoid_focal_loss(logits, targets, 0.25, 2.0, reduction="none")
  np.testing.assert_allclose(out, torch_ref["sfocal_out"], rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(seg.sigmoid_focal_loss(logits, targets), torch_ref["sfocal_out"].mean(), rtol=1e-5)
  with pytest.raises(ConfigError, match="reduction"):
    seg.sigmoid_focal_loss(logits, targets, reduction="avg")


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("smooth", [1.0, 1e-3])
def test_dice_and_jaccard_match_numpy(per_image, smooth):
  logits, labels = random_case(3)
  inter, pred, true = np_overlap(logits, labels, 4, per_image)
  dice = 1 - ((2 * inter + smooth) / (pred + true + smooth)).mean(-1)
  iou = 1 - ((inter + smooth) / (pred + true - inter + smooth)).mean(-1)
  np.testing.assert_allclose(seg.dice_loss(logits, labels, smooth, per_image=per_image), np.mean(dice), rtol=1e-5)
  np.testing.assert_allclose(seg.jaccard_loss(logits, labels, smooth, per_image=per_image), np.mean(iou), rtol=1e-5)


def test_dice_perfect_prediction_is_near_zero_and_masks_padding():
  labels = np.array([[[0, 1], [2, 255]]], np.int32)
  logits = 50.0 * jax.nn.one_hot(np.where(labels == 255, 0, labels), 3)
  assert float(seg.dice_loss(logits, labels, smooth=1e-6)) < 1e-5
  assert float(seg.jaccard_loss(logits, labels, smooth=1e-6)) < 1e-5
  logits2, labels2 = random_case(4)
  mask = np.array([1, 1, 0], np.float32)
  inter, pred, true = np_overlap(logits2[:2], labels2[:2], 4, per_image=True)
  expected = (1 - ((2 * inter + 1) / (pred + true + 1)).mean(-1)).mean()
  np.testing.assert_allclose(seg.dice_loss(logits2, labels2, example_mask=mask, per_image=True), expected, rtol=1e-5)


def test_combined_loss_weights_named_terms():
  logits, labels = random_case(5)
  total, parts = seg.combined_loss(logits, labels, {"cross_entropy": 1.0, "dice": 0.5, "focal": 2.0},
                                   options={"focal": {"gamma": 1.0}})
  log_p, valid = np_true_log_prob(logits, labels)
  focal = (-(1 - np.exp(log_p)) * log_p)[valid].mean()
  inter, pred, true = np_overlap(logits, labels, 4, False)
  dice = 1 - ((2 * inter + 1) / (pred + true + 1)).mean()
  np.testing.assert_allclose(parts["focal"], focal, rtol=1e-5)
  np.testing.assert_allclose(total, np_cross_entropy(logits, labels) + 0.5 * dice + 2.0 * focal, rtol=1e-5)
  with pytest.raises(ConfigError, match="lovasz"):
    seg.combined_loss(logits, labels, {"lovasz": 1.0})


def test_losses_jit_and_differentiate():
  logits, labels = random_case(6)
  grad = jax.jit(jax.grad(lambda x: seg.combined_loss(x, labels, {"cross_entropy": 1.0, "jaccard": 1.0})[0]))(
      jnp.asarray(logits))
  assert np.all(np.isfinite(np.asarray(grad)))
  ignored = np.asarray(labels) == 255
  np.testing.assert_array_equal(np.asarray(grad)[ignored], 0.0)  # ignored pixels get no gradient
