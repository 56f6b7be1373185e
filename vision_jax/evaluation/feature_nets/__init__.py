"""Feature networks for FID/KID/precision-recall: small CNN classifiers trained in this project on the embedded
28x28 data, their weights stored next to this file as `<dataset>.npz` (float32 parameters keyed by their
'/'-joined path, plus `test_accuracy`), loaded with `allow_pickle=False`.

Made by (about a minute each on 2 CPU cores):

    python -m vision_jax.evaluation.feature_nets.train --dataset=mnist_embedded
    python -m vision_jax.evaluation.feature_nets.train --dataset=fashion_mnist_embedded

Inputs are images in [-1, 1] (a GAN generator's tanh range), [N, 28, 28, 1]; the features are the 64 ReLU
activations before the classifier layer.
"""

from __future__ import annotations

import dataclasses
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import ConfigError

FEATURE_DIM = 64
DATASETS = ("mnist_embedded", "fashion_mnist_embedded")


class FeatureNet(nn.Module):
  """Images [N, 28, 28, 1] in [-1, 1] -> (features [N, 64], logits [N, num_classes])."""

  num_classes: int = 10

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = nn.relu(nn.Conv(32, (3, 3))(images.astype(jnp.float32)))
    x = nn.max_pool(x, (2, 2), (2, 2))
    x = nn.relu(nn.Conv(64, (3, 3))(x))
    x = nn.max_pool(x, (2, 2), (2, 2))
    features = nn.relu(nn.Dense(FEATURE_DIM)(x.reshape((x.shape[0], -1))))
    return features, nn.Dense(self.num_classes)(features)


def weights_path(dataset: str) -> str:
  """Where the weights of the feature network of `dataset` live."""
  return os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{dataset}.npz")


def flatten_params(params) -> dict[str, np.ndarray]:
  """Nested parameters -> {'a/b/c': array}."""
  flat = {}
  for path, value in jax.tree_util.tree_flatten_with_path(params)[0]:
    flat["/".join(str(getattr(k, "key", k)) for k in path)] = np.asarray(value, np.float32)
  return flat


def unflatten_params(flat: dict[str, np.ndarray]) -> dict:
  """{'a/b/c': array} -> nested parameters."""
  params: dict = {}
  for key, value in flat.items():
    node = params
    *parents, leaf = key.split("/")
    for parent in parents:
      node = node.setdefault(parent, {})
    node[leaf] = jnp.asarray(value)
  return params


@dataclasses.dataclass(frozen=True)
class LoadedFeatureNet:
  """A feature network and its parameters; `test_accuracy` on the held-out split it was measured on."""

  module: FeatureNet
  params: dict
  test_accuracy: float

  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Images [N, 28, 28, 1] in [-1, 1] -> (features [N, 64], logits [N, 10])."""
    return self.module.apply({"params": self.params}, images)


def load(dataset: str) -> LoadedFeatureNet:
  """The committed feature network of `dataset` (one of `DATASETS`)."""
  path = weights_path(dataset)
  if dataset not in DATASETS or not os.path.exists(path):
    raise ConfigError(f"no feature network for dataset {dataset!r}; use one of {', '.join(DATASETS)} or train one "
                      f"with `python -m vision_jax.evaluation.feature_nets.train --dataset={dataset}`")
  with np.load(path, allow_pickle=False) as data:
    flat = {k: data[k] for k in data.files if k != "test_accuracy"}
    accuracy = float(data["test_accuracy"])
  return LoadedFeatureNet(FeatureNet(), unflatten_params(flat), accuracy)
