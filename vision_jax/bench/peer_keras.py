"""Keras 3 peers on the JAX backend: `keras.applications` where Keras has the model, hand-built otherwise.

Needs `keras` (the `bench`/`test` extras). KERAS_BACKEND is set to "jax" before Keras is imported.
"""

from __future__ import annotations

import os
from typing import Any

MODELS = ("lenet5_relu", "simple_cnn", "resnet18_cifar", "keras_resnet50")


def _build(keras, name: str, shape: tuple[int, int, int], num_classes: int):
  layers = keras.layers
  inputs = keras.Input(shape)
  if name == "keras_resnet50":
    return keras.applications.ResNet50(weights=None, input_shape=shape, classes=num_classes)
  if name == "lenet5_relu":
    x = layers.Conv2D(6, 5, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 5, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(layers.Conv2D(120, 5, activation="relu")(x))
    outputs = layers.Dense(num_classes)(layers.Dense(84, activation="relu")(x))
  elif name == "simple_cnn":
    x = inputs
    for width in (32, 64):
      x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
      x = layers.Conv2D(width, 3, activation="relu")(x)
      x = layers.Dropout(0.25)(layers.MaxPooling2D(2)(x))
    x = layers.Dropout(0.5)(layers.Dense(512, activation="relu")(layers.Flatten()(x)))
    outputs = layers.Dense(num_classes)(x)
  elif name == "resnet18_cifar":
    outputs = _resnet18_cifar(layers, inputs, num_classes)
  else:
    raise ValueError(f"no Keras peer for {name!r}; have {', '.join(MODELS)}")
  return keras.Model(inputs, outputs)


def _resnet18_cifar(layers, inputs, num_classes: int):
  def conv_bn(x, width, kernel, stride):
    x = layers.Conv2D(width, kernel, stride, padding="same", use_bias=False)(x)
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)

  x = layers.ReLU()(conv_bn(inputs, 64, 3, 1))
  for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
    for block_stride in (stride, 1):
      y = conv_bn(layers.ReLU()(conv_bn(x, width, 3, block_stride)), width, 3, 1)
      shortcut = x if block_stride == 1 and x.shape[-1] == width else conv_bn(x, width, 1, block_stride)
      x = layers.ReLU()(layers.Add()([y, shortcut]))
  return layers.Dense(num_classes)(layers.GlobalAveragePooling2D()(x))


def bench_model(model: str, batch: int, resolution: int, channels: int, dtype: str, steps: int,
                warmup: int) -> dict[str, Any]:
  """Images/s of `train_on_batch` (SGD momentum, jit-compiled) and `predict_on_batch`."""
  os.environ.setdefault("KERAS_BACKEND", "jax")
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from vision_jax.bench import timing  # pylint: disable=g-import-not-at-top

  if dtype == "bfloat16":
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
  keras.utils.set_random_seed(0)
  net = _build(keras, model, (resolution, resolution, channels), 10)
  net.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=model != "keras_resnet50"),
              jit_compile=True)
  rng = np.random.default_rng(0)
  images = rng.random((batch, resolution, resolution, channels), dtype=np.float32)
  labels = rng.integers(0, 10, batch)
  train = timing.time_steps(lambda: net.train_on_batch(images, labels), lambda r: r, warmup, steps)
  evals = timing.time_steps(lambda: net.predict_on_batch(images), lambda r: r, 2, steps)
  return {"train_images_per_sec": batch / train["median_step_sec"],
          "eval_images_per_sec": batch / evals["median_step_sec"],
          "first_step_sec": train["first_step_sec"], "peak_host_mib": timing.peak_host_memory_mib(),
          "keras": keras.__version__}
