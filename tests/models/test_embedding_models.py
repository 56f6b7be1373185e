"""Siamese embedding and pair-classifier models: the backbone's classifier layer as the embedding head, L2
normalisation, Koch's |e1 - e2| head, shared weights, parameter counts by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import models
from vision_jax.models import embedding

LENET_FEATURES = 84  # LeNet-5's last hidden layer


@pytest.fixture(scope="module")
def images():
  rng = np.random.default_rng(0)
  return jnp.asarray(rng.normal(size=(3, 28, 28, 1)), jnp.float32), jnp.asarray(rng.normal(size=(3, 28, 28, 1)),
                                                                                 jnp.float32)


def test_embedding_is_the_normalised_backbone_output(images):
  x, _ = images
  model = models.get("siamese_embedding", backbone="lenet5_relu", embed_dim=16)
  variables = model.init(jax.random.key(0), x)
  backbone = models.get("lenet5_relu", num_classes=16)
  raw = np.asarray(backbone.apply({"params": variables["params"]["backbone"]}, x), np.float64)
  expected = raw / np.linalg.norm(raw, axis=1, keepdims=True)
  out = np.asarray(model.apply(variables, x))
  assert out.shape == (3, 16)
  np.testing.assert_allclose(out, expected, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
  unnormalised = models.get("siamese_embedding", backbone="lenet5_relu", embed_dim=16, normalize=False)
  np.testing.assert_allclose(np.asarray(unnormalised.apply(variables, x)), raw, atol=1e-5)


def test_embedding_head_is_the_backbone_classifier_sized_to_the_embedding():
  model = models.get("siamese_embedding", backbone="lenet5_relu", embed_dim=32)
  shapes = jax.tree.map(jnp.shape, jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1))))
  assert shapes["params"]["backbone"]["logits"]["kernel"] == (LENET_FEATURES, 32)
  lenet_10 = 61_706  # pinned in test_param_counts
  expected = lenet_10 - (LENET_FEATURES + 1) * 10 + (LENET_FEATURES + 1) * 32
  assert models.count_params(model, (28, 28, 1))["params"] == expected


def test_pair_classifier_is_koch_weighted_l1_and_shares_the_branches(images):
  x1, x2 = images
  model = models.get("siamese_pair_classifier", backbone="lenet5_relu", embed_dim=8)
  variables = model.init(jax.random.key(1), x1, x2)
  params = variables["params"]
  assert set(params) == {"backbone", "pair_head"}  # one backbone: both branches use the same weights
  backbone = models.get("lenet5_relu", num_classes=8)
  e1 = np.asarray(backbone.apply({"params": params["backbone"]}, x1), np.float64)
  e2 = np.asarray(backbone.apply({"params": params["backbone"]}, x2), np.float64)
  w = np.asarray(params["pair_head"]["kernel"], np.float64)[:, 0]
  b = float(params["pair_head"]["bias"][0])
  logits = np.asarray(model.apply(variables, x1, x2))
  assert logits.shape == (3,)
  np.testing.assert_allclose(logits, np.abs(e1 - e2) @ w + b, atol=1e-5)
  np.testing.assert_allclose(np.asarray(model.apply(variables, x2, x1)), logits, atol=1e-6)  # symmetric
  embedded = model.apply(variables, x1, method=embedding.PairClassifier.embed)
  np.testing.assert_allclose(np.asarray(embedded), e1, atol=1e-5)


def test_any_zoo_backbone_with_its_own_input(images):
  del images
  model = models.get("siamese_embedding", backbone="simple_cnn", embed_dim=12)
  x = jnp.zeros((2, 32, 32, 3))
  out = jax.eval_shape(lambda: model.apply(model.init(jax.random.key(0), x), x))
  assert out.shape == (2, 12)
  assert set(embedding.NAMES) <= set(models.NOT_IMAGE_CLASSIFIERS)


def test_centred_embedding_uses_the_training_statistics(images):
  x, _ = images
  backbone = models.get("conv4", num_classes=6, widths=(2,), batch_norm=False)  # small: quick to compile
  model = embedding.EmbeddingNet(backbone, normalize=True, center=True)
  variables = model.init(jax.random.key(0), x)
  assert variables["params"].keys() == {"backbone"}  # the centring has no scale or offset
  rng = np.random.default_rng(3)
  mean, var = rng.normal(size=6), rng.uniform(0.5, 2.0, size=6)
  variables = {"params": variables["params"], "batch_stats": {"center": {"mean": mean, "var": var}}}
  raw = np.asarray(backbone.apply({"params": variables["params"]["backbone"]}, x), np.float64)
  centred = (raw - mean) / np.sqrt(var + 1e-5)
  expected = centred / np.linalg.norm(centred, axis=1, keepdims=True)
  np.testing.assert_allclose(np.asarray(model.apply(variables, x)), expected, atol=1e-5)
  # Training mode standardises with the batch's own moments and updates the running ones.
  out, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
  batch = (raw - raw.mean(0)) / np.sqrt(raw.var(0) + 1e-5)
  np.testing.assert_allclose(np.asarray(out), batch / np.linalg.norm(batch, axis=1, keepdims=True), atol=1e-4)
  np.testing.assert_allclose(np.asarray(updates["batch_stats"]["center"]["mean"]), 0.9 * mean + 0.1 * raw.mean(0),
                             atol=1e-5)
