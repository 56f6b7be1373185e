"""The network the interpretation tools look through: a run trained here, imported weights, or seeded random
weights, with its input normalisation, so every tool works on pixels in [0, 1].

  * `from_run(config, workdir)`: a classification run of `python -m vision_jax.main` (best, else newest checkpoint).
  * `from_weights(model, path, source)`: torchvision (`.pth`/`.pt`/`.npz` state dict) or Keras (`.weights.h5`)
    weights through `vision_jax.interop`, with torchvision's ImageNet mean/std normalisation (normalize="imagenet")
    or none (normalize="none"; Keras models' own preprocessing, e.g. Caffe-style BGR means, is not applied).
  * `random_network(model, ...)`: seeded random weights (texture statistics of random filters are still
    informative for style transfer; used by tests and smoke runs).
  * `from_section(config.problem.network)`: one of them from a config section (kind = run | torch | keras | random).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_RUN_CONFIG = "configs/interpret_classifier.py"
DEFAULT_RUN_WORKDIR = "runs/interpret/classifier"


@dataclasses.dataclass
class Network:
  """A classifier with its variables and input normalisation.

  Attributes:
    name: the model's registry name.
    model: the unbound Flax module (inference mode: `model.apply(variables, x)`).
    variables: its variables ({"params", "batch_stats"}).
    normalize: pixels [N, H, W, C] in [0, 1] -> model inputs.
    image_shape: (H, W, C) of the pixels it was trained on.
    class_names: one name per logit.
  """

  name: str
  model: nn.Module
  variables: Any
  normalize: Callable[[jax.Array], jax.Array]
  image_shape: tuple[int, int, int]
  class_names: tuple[str, ...]

  def logits(self, pixels: jax.Array) -> jax.Array:
    """Pixels [N, H, W, C] in [0, 1] -> logits [N, K]."""
    return self.model.apply(self.variables, self.normalize(pixels))

  def with_model(self, model: nn.Module) -> "Network":
    """The same network with another module over the same variables (e.g. `attribution.guided_model`)."""
    return dataclasses.replace(self, model=model)


def from_run(config_spec: str, workdir: str, which: str = "best") -> Network:
  """The classifier of a classification run.

  Args:
    config_spec: the run's config ("configs/x.py:args"), as given to `python -m vision_jax.main`.
    workdir: the run directory.
    which: "best" (falls back to the newest periodic checkpoint) or "checkpoints".

  Raises:
    ConfigError: no such run, or not an image classification run.
  """
  from vision_jax import config_loading, tasks  # pylint: disable=import-outside-toplevel
  from vision_jax.data import datasets  # pylint: disable=import-outside-toplevel
  from vision_jax.train_lib import checkpoint  # pylint: disable=import-outside-toplevel
  if not os.path.isdir(workdir):
    raise ConfigError(f"no run in {workdir}; train it first: python -m vision_jax.main --config={config_spec} "
                      f"--workdir={workdir}")
  config = config_loading.load_config(config_spec)
  if config.task != "classification":
    raise ConfigError(f"{config_spec} is a {config.task!r} run; the interpretation tools need a classification run")
  _, spec = datasets.load(config.dataset.name, config.dataset.train_split, config.dataset.data_dir or None)
  task = tasks.get(config, spec)
  if len(spec.image_shape) != 3:
    raise ConfigError(f"{config_spec} classifies {len(spec.image_shape) - 1}-D signals, not images")
  best = os.path.join(workdir, "best")
  use = which if which == "checkpoints" or (os.path.isdir(best) and os.listdir(best)) else "checkpoints"
  state = checkpoint.load_state_arrays(workdir, which=use)
  variables = {"params": state["params"]["model"]}
  if state.get("batch_stats", {}).get("model"):
    variables["batch_stats"] = state["batch_stats"]["model"]
  ops, key = task.input_ops, jax.random.PRNGKey(0)

  def normalize(pixels: jax.Array) -> jax.Array:
    return ops.normalize(key, ops.preprocess(key, pixels * 255.0))

  return Network(config.model.name, task.model, jax.tree.map(jnp.asarray, variables), normalize,
                 tuple(spec.image_shape), tuple(spec.class_names or [str(i) for i in range(spec.num_classes)]))


def _mean_std(mean: Sequence[float], std: Sequence[float]) -> Callable[[jax.Array], jax.Array]:
  mean_arr, std_arr = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
  return lambda pixels: (pixels - mean_arr) / std_arr


def from_weights(model_name: str, path: str, source: str = "torch", num_classes: int | None = None,
                 image_size: int = 224, normalize: str = "imagenet") -> Network:
  """A zoo model with imported weights.

  Args:
    model_name: a model `vision_jax.interop.torch` (or `.keras`) supports, e.g. "vgg16", "resnet18".
    path: the weights file.
    source: "torch" or "keras".
    num_classes: the checkpoint's classes; read from it when None.
    image_size: the square RGB input size used to trace the model.
    normalize: "imagenet" (torchvision's mean/std) or "none".
  """
  from vision_jax import models  # pylint: disable=import-outside-toplevel
  from vision_jax.interop import keras as keras_interop  # pylint: disable=import-outside-toplevel
  from vision_jax.interop import torch as torch_interop  # pylint: disable=import-outside-toplevel
  loaders = {"torch": torch_interop.load, "keras": keras_interop.load}
  if source not in loaders:
    raise ConfigError(f"network source {source!r}: use torch or keras")
  if not os.path.exists(path):
    raise ConfigError(f"no weights file {path}; pass the path of a {source} {model_name} checkpoint you have")
  variables = loaders[source](model_name, path, num_classes=num_classes, input_shape=(image_size, image_size, 3))
  classes = _last_dense_width(variables) if num_classes is None else num_classes
  model = models.get(model_name, num_classes=classes)
  norm = _mean_std(IMAGENET_MEAN, IMAGENET_STD) if normalize == "imagenet" else (lambda pixels: pixels)
  return Network(model_name, model, variables, norm, (image_size, image_size, 3),
                 tuple(str(i) for i in range(classes)))


def _last_dense_width(variables: Any) -> int:
  """Output width of the model's last 2-D kernel (its classifier)."""
  kernels = [leaf for leaf in jax.tree.leaves(variables["params"]) if np.ndim(leaf) == 2]
  return int(np.shape(kernels[-1])[1])


def random_network(model_name: str, image_shape: Sequence[int], num_classes: int = 10, seed: int = 0,
                   **model_kwargs: Any) -> Network:
  """A zoo model with seeded random weights on pixels standardised to mean 0.5, std 0.25."""
  from vision_jax import models  # pylint: disable=import-outside-toplevel
  model = models.get(model_name, num_classes=num_classes, **model_kwargs)
  variables = model.init(jax.random.PRNGKey(seed), jnp.zeros((1,) + tuple(image_shape), jnp.float32))
  return Network(model_name, model, variables, _mean_std((0.5,), (0.25,)), tuple(image_shape),
                 tuple(str(i) for i in range(num_classes)))


def from_section(section: ml_collections.ConfigDict) -> Network:
  """The network of a config section (e.g. `config.problem.network`).

  Keys: kind ("run", "torch", "keras" or "random"); run: config, workdir; torch/keras: model, weights,
  image_size; random: model, image_size, channels, kwargs (dict), seed.
  """
  kind = section.kind
  if kind == "run":
    return from_run(section.config, section.workdir)
  if kind in ("torch", "keras"):
    return from_weights(section.model, section.weights, kind, image_size=int(section.image_size),
                        normalize="imagenet" if kind == "torch" else "none")
  if kind == "random":
    kwargs = dict(section.get("kwargs") or {})
    size = int(section.image_size)
    return random_network(section.model, (size, size, int(section.channels)), seed=int(section.get("seed", 0)),
                          **kwargs)
  raise ConfigError(f"network kind {kind!r}: use run (a run trained here), torch or keras (imported weights) or "
                    "random")


class FrozenNetworkMixin:
  """For input problems whose `config.problem.network` section names a frozen network (`from_section`): the
  network, loaded on first use (so building a problem, e.g. to trace its first image, loads no weights), and the
  checkpoint identity's model name."""

  config: ml_collections.ConfigDict
  _network: Network | None = None

  @property
  def network(self) -> Network:
    """The frozen network."""
    if self._network is None:
      self._network = from_section(self.config.problem.network)
    return self._network

  @property
  def model_name(self) -> str:
    """The run directory (kind run) or the model name."""
    section = self.config.problem.network
    return str(section.workdir if section.kind == "run" else section.model)


# Config arguments (`:key=value`) that choose the network of configs/deepdream.py, style_transfer.py and
# activation_max.py: network = run (a run trained here: run_config + workdir), torch or keras (model + weights
# file), random (model with seeded weights; width is the ResNet width); image_channels: the pixels' channels.
NETWORK_ARGS = {"network": "run", "run_config": DEFAULT_RUN_CONFIG, "workdir": DEFAULT_RUN_WORKDIR,
                "model": "resnet18_cifar", "weights": "", "width": 8, "image_channels": 1,
                "input_size": 224}


def network_section(arg: Any) -> ml_collections.ConfigDict:
  """The `network` config section (`from_section`) from parsed config arguments with the keys of
  `NETWORK_ARGS`."""
  channels = 3 if arg.network in ("torch", "keras") else int(arg.image_channels)
  kwargs = {"width": int(arg.width)} if arg.network == "random" and arg.model.startswith("resnet") else {}
  return ml_collections.ConfigDict({
      "kind": arg.network, "config": arg.run_config, "workdir": arg.workdir, "model": arg.model,
      "weights": arg.weights, "image_size": int(arg.input_size), "channels": channels, "kwargs": kwargs, "seed": 0})
