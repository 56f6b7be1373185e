"""Keras import: randomly initialized keras.applications models (KERAS_BACKEND=jax, random weights and batch-norm
statistics), saved to .weights.h5 / .keras, imported, logits compared with Keras' own (max abs diff <= 1e-4).

Each Keras model is built once per module. Building one spends most of its time compiling an XLA random draw
per weight shape, values that `randomize` overwrites anyway: the module fixture makes Keras' initializers
return zeros instead, which builds e.g. EfficientNetB0 in seconds instead of a minute.
"""

import inspect
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
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
         "InceptionV3": ("keras_inception_v3", 75), "VGG16": ("keras_vgg16", 32), "VGG19": ("keras_vgg19", 32),
         "MobileNetV2": ("keras_mobilenet_v2", 32), "ResNet101": ("keras_resnet101", 32),
         "ResNet152": ("keras_resnet152", 32), "DenseNet121": ("keras_densenet121", 32),
         "DenseNet169": ("keras_densenet169", 32), "DenseNet201": ("keras_densenet201", 32),
         **{f"EfficientNetB{i}": (f"keras_efficientnet_b{i}", 32) for i in range(8)}}
# Over ~15 s each on the shared 2-core machine, or a further depth of a family CI already covers; -m slow.
SLOW = {"ResNet101", "ResNet152", "DenseNet169", "DenseNet201", *(f"EfficientNetB{i}" for i in range(2, 8))}
CLASSES = 5


@pytest.fixture(scope="module", autouse=True)
def zero_keras_initializers():
  """Keras initializers return host zeros (no XLA compile per shape); `randomize` sets every value after."""
  with pytest.MonkeyPatch.context() as patch:
    for cls in vars(keras.initializers).values():
      if inspect.isclass(cls) and issubclass(cls, keras.initializers.Initializer):
        patch.setattr(cls, "__call__", lambda self, shape, dtype=None: np.zeros(shape, dtype or "float32"))
    yield


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
      assert "float" not in str(w.dtype) or not shape, f"{name} {shape} would keep its (zero) initial value"
      continue
    w.assign(value.astype(np.float32))


_BUILT: dict = {}


def keras_model(app):
  """The randomized Keras application `app` (built once per module) with its logits layer bare."""
  if app not in _BUILT:
    size = PAIRS[app][1]
    model = getattr(keras.applications, app)(weights=None, input_shape=(size, size, 3), classes=CLASSES,
                                            classifier_activation=None)
    randomize(model)
    _BUILT[app] = model
  return _BUILT[app]


def parity(app, tmp_path, fmt="weights.h5"):
  """(max abs logit difference ours vs Keras, max abs Keras logit) on two random images."""
  ours_name, size = PAIRS[app]
  model = keras_model(app)
  path = str(tmp_path / f"{app}.{fmt}")
  model.save_weights(path) if fmt == "weights.h5" else model.save(path)
  scale = 255.0 if app.startswith("EfficientNet") else 1.0  # EfficientNet rescales by 1/255 itself
  x = np.random.default_rng(1).uniform(0, scale, (2, size, size, 3)).astype(np.float32)
  expected = np.asarray(model.predict(x, verbose=0))
  variables = keras_interop.load(ours_name, path)
  ours_model = models.get(ours_name, num_classes=CLASSES)
  ours = jax.jit(lambda v, images: ours_model.apply(v, images, train=False))(variables, jnp.asarray(x))
  return float(np.abs(np.asarray(ours) - expected).max()), float(np.abs(expected).max())


@pytest.mark.parametrize("app", [pytest.param(a, marks=pytest.mark.slow) if a in SLOW else a for a in PAIRS])
def test_keras_parity(app, tmp_path):
  start = time.process_time()
  diff, scale = parity(app, tmp_path)
  print(f"keras parity {app} -> {PAIRS[app][0]}: max abs logit diff {diff:.3g} (max abs logit {scale:.3g}), "
        f"{time.process_time() - start:.1f} s CPU")
  assert scale > 1e-2, "logits too small for the comparison to mean anything"
  assert diff <= 1e-4


def test_keras_archive(tmp_path):
  diff, _ = parity("MobileNet", tmp_path, fmt="keras")
  assert diff <= 1e-4


def test_wrong_file_is_one_user_error(tmp_path):
  path = str(tmp_path / "m.weights.h5")
  keras_model("MobileNet").save_weights(path)
  with pytest.raises(UserError) as e:
    keras_interop.load("keras_resnet50", path)
  assert "does not match the model" in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(UserError, match="no such"):
    keras_interop.load("mobilenet_v1", str(tmp_path / "absent.weights.h5"))
  with pytest.raises(UserError, match="no Keras importer"):
    keras_interop.load("resnet18", path)
