"""Keras import: randomly initialized keras.applications models (KERAS_BACKEND=jax, random weights and batch-norm
statistics), saved to .weights.h5 / .keras, imported, logits compared with Keras' own (max abs diff <= 1e-4)."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

from vision_jax import models  # noqa: E402
from vision_jax.errors import UserError  # noqa: E402
from vision_jax.interop import keras as keras_interop  # noqa: E402

# Keras application -> (our registry name, smallest input Keras allows)
PAIRS = {"MobileNet": ("mobilenet_v1", 32), "ResNet50": ("keras_resnet50", 32), "Xception": ("xception", 71),
         "InceptionV3": ("keras_inception_v3", 75), "EfficientNetB0": ("keras_efficientnet_b0", 32),
         "VGG16": ("keras_vgg16", 32), "MobileNetV2": ("keras_mobilenet_v2", 32),
         "DenseNet121": ("keras_densenet121", 32)}
SLOW = {"MobileNetV2", "DenseNet121"}


def randomize(model, seed=0):
  """Random weights everywhere (Keras' own init leaves biases, BN shifts and statistics at 0/1)."""
  rng = np.random.default_rng(seed)
  for w in model.weights:
    name, shape = w.path, tuple(w.shape)
    if "variance" in name:
      value = rng.uniform(0.5, 1.5, shape)
    elif "gamma" in name:
      value = rng.uniform(0.2, 0.6, shape)
    elif any(k in name for k in ("mean", "beta", "bias")):
      value = 0.1 * rng.standard_normal(shape)
    elif len(shape) >= 2:
      fan_in = np.prod(shape[:2]) if "depthwise" in name else np.prod(shape[:-1])
      value = rng.standard_normal(shape) / np.sqrt(fan_in)
    else:
      continue
    w.assign(value.astype(np.float32))


def parity(app, tmp_path, fmt="weights.h5"):
  ours_name, size = PAIRS[app]
  model = getattr(keras.applications, app)(weights=None, input_shape=(size, size, 3), classes=5,
                                          classifier_activation=None)
  randomize(model)
  path = str(tmp_path / f"{app}.{fmt}")
  model.save_weights(path) if fmt == "weights.h5" else model.save(path)
  scale = 255.0 if app.startswith("EfficientNet") else 1.0  # EfficientNet rescales by 1/255 itself
  x = np.random.default_rng(1).uniform(0, scale, (2, size, size, 3)).astype(np.float32)
  expected = np.asarray(model(x, training=False))
  variables = keras_interop.load(ours_name, path)
  ours = models.get(ours_name, num_classes=5).apply(variables, jnp.asarray(x), train=False)
  return float(np.abs(np.asarray(ours) - expected).max()), float(np.abs(expected).max())


@pytest.mark.parametrize("app", [pytest.param(a, marks=pytest.mark.slow) if a in SLOW else a for a in PAIRS])
def test_keras_parity(app, tmp_path):
  diff, scale = parity(app, tmp_path)
  assert scale > 1e-2, "logits too small for the comparison to mean anything"
  assert diff <= 1e-4


def test_keras_archive(tmp_path):
  diff, _ = parity("MobileNet", tmp_path, fmt="keras")
  assert diff <= 1e-4


def test_wrong_file_is_one_user_error(tmp_path):
  model = keras.applications.MobileNet(weights=None, input_shape=(32, 32, 3), classes=5)
  path = str(tmp_path / "m.weights.h5")
  model.save_weights(path)
  with pytest.raises(UserError) as e:
    keras_interop.load("keras_resnet50", path)
  assert "does not match the model" in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(UserError, match="no such"):
    keras_interop.load("mobilenet_v1", str(tmp_path / "absent.weights.h5"))
  with pytest.raises(UserError, match="no Keras importer"):
    keras_interop.load("resnet18", path)
