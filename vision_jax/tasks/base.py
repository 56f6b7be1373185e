"""The task protocol: what a task family provides to the one training loop, and helpers tasks share.

A task owns its networks (named: {"model"} for a classifier, {"generator", "critic"} for a GAN), their initial
variables, the train step (which may update any subset of networks through `TrainState.apply_gradients`), the
eval step and the evaluators that turn its outputs into metrics, the unit of throughput, its checkpoint identity,
reports and pictures, `--mode=eval` and `--mode=predict`. The loop (`vision_jax.train`) owns the rest: data,
sharding, compilation, logging, callbacks, checkpoints, preemption and resume.

Adding a task family: subclass `Task`, implement the abstract methods, decorate it with `@register("name")`,
and select it with `config.task = "name"`. `tests/tasks/test_conformance.py` runs every registered task through
init, a train step, an evaluation, a checkpoint round trip and predict.
"""

from __future__ import annotations

import abc
import os
from typing import Any, Callable, ClassVar, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vision_jax.data import augment
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation.evaluators import Evaluator
from vision_jax.train_lib import step_memory, writers
from vision_jax.train_lib.state import TrainState

Metrics = dict[str, jax.Array]


class Task(abc.ABC):
  """One task family: networks, steps, evaluators, reports (see the module docstring).

  Class attributes:
    throughput_unit: what one example of a batch is, for `<unit>_per_sec` ("images", "pairs", "episodes").
    best_metric: (eval metric, "max" | "min") that `checkpoint.best_metric = "auto"` keeps the best of.
    curve_metrics: metrics drawn in curves.png (those present; None: every scalar metric).
    builds_own_networks: True when the networks come from the task's own config section rather than
      `config.model` (summary.json then names the network classes instead of `config.model.name`).

  Args:
    config: the experiment config.
    spec: the training split's `DatasetSpec`.
  """

  throughput_unit: ClassVar[str] = "images"
  best_metric: ClassVar[tuple[str, str]] = ("loss", "min")
  curve_metrics: ClassVar[tuple[str, ...] | None] = None
  builds_own_networks: ClassVar[bool] = False

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    self.config = config
    self.spec = spec

  # --- Networks and state -------------------------------------------------------------------------------------
  @abc.abstractmethod
  def networks(self) -> dict[str, nn.Module]:
    """Network name -> Flax module, in a fixed order."""

  @abc.abstractmethod
  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    """Positional inputs of one example batch ([1, ...]) for network `name` (initialization, summaries)."""

  def init_network(self, name: str, rng: jax.Array) -> dict[str, Any]:
    """Initial variables of network `name` (`module.init` with `train=False`)."""
    return self.networks()[name].init({"params": rng, "dropout": rng}, *self.example_inputs(name), train=False)

  def init_variables(self, rng: jax.Array) -> dict[str, dict[str, Any]]:
    """Network name -> initial variables. One network uses `rng` itself; several use `fold_in(rng, index)`."""
    names = list(self.networks())
    if len(names) == 1:
      return {names[0]: self.init_network(names[0], rng)}
    return {name: self.init_network(name, jax.random.fold_in(rng, i)) for i, name in enumerate(names)}

  def init_extras(self, rng: jax.Array) -> dict[str, Any]:
    """Initial `TrainState.extras` (EMA weights, pools, schedules' state); none by default."""
    del rng
    return {}

  # --- Steps and evaluation -----------------------------------------------------------------------------------
  @abc.abstractmethod
  def train_step(self, state: TrainState, batch: dict[str, jax.Array],
                 txs: Mapping[str, optax.GradientTransformation]) -> tuple[TrainState, Metrics]:
    """One training step on a global batch: (state with updated networks, {metric: scalar batch mean}).

    The loop advances `state.step` afterwards; a step reads its randomness from `state.step_rng()`.
    """

  @abc.abstractmethod
  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Outputs of one padded eval batch (its `mask` marks real examples) for the evaluators."""

  @abc.abstractmethod
  def evaluators(self) -> list[Evaluator]:
    """Fresh evaluators for one pass over the eval split."""

  # --- Identity, throughput, reports ---------------------------------------------------------------------------
  def model_name(self) -> str:
    """What summary.json reports as the model: `config.model.name`, or the network classes by name."""
    if not self.builds_own_networks:
      return str(self.config.model.name)
    return ", ".join(f"{name}={type(module).__name__}" for name, module in self.networks().items())

  def identity(self) -> dict[str, Any]:
    """What must match between a checkpoint and the task that resumes it, beyond the parameter shapes."""
    return {}

  def examples_per_batch(self, batch_size: int) -> int:
    """Throughput units in a global batch of `batch_size` dataset examples."""
    return batch_size

  def on_evaluation(self, workdir: str, state: TrainState, step: int, metrics: Mapping[str, Any]) -> list[str]:
    """Called on process 0 after each evaluation during training, with the evaluated state: pictures that show
    progress across steps (a GAN's sample grid from fixed latents). Nothing by default.

    Returns:
      Paths written.
    """
    del workdir, state, step, metrics
    return []

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """Writes the task's pictures and tables of a finished evaluation; may add entries to `summary`.

    Returns:
      Paths written.
    """
    del workdir, metrics, summary
    return []

  # --- Modes ---------------------------------------------------------------------------------------------------
  def eval_mode(self, members: Sequence[tuple[ml_collections.ConfigDict, str]], runner: Any) -> list[str]:
    """`--mode=eval`: evaluates the run's best (else newest) checkpoint and writes eval.json.

    Args:
      members: (config, workdir) of the run, then of any `--ensemble` runs.
      runner: `vision_jax.train_lib.setup` (passed in: tasks do not import the loop), giving
        `evaluate(config, workdir) -> metrics`.

    Returns:
      Lines to print.
    """
    if len(members) > 1:
      raise ConfigError(f"--ensemble averages classifiers' probabilities; task {self.config.task!r} has no "
                        "ensemble evaluation: drop --ensemble")
    config, workdir = members[0]
    metrics = runner.evaluate(config, workdir)
    scalars = scalar_metrics(metrics)
    path = os.path.join(workdir, "eval.json")
    if jax.process_index() == 0:  # every process has the metrics; one writes them
      writers.write_json(path, {"step": metrics.get("step"), "metrics": scalars})
    shown = " ".join(f"{k} {v:.4f}" for k, v in scalars.items() if k not in ("step", "num_examples"))
    return [f"eval of step {metrics.get('step')} on {metrics.get('num_examples', '?')} examples: {shown}",
            f"wrote {path}"]

  def predict(self, state: TrainState, paths: Sequence[str]) -> list[str]:
    """`--mode=predict` on input files: one printable line per file."""
    del state, paths
    raise ConfigError(f"task {self.config.task!r} has no --mode=predict; use --mode=eval, or call the task's "
                      "step functions from Python")


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
  """The scalar entries of a metrics dict as Python floats (arrays such as confusion matrices left out)."""
  return {k: float(v) for k, v in metrics.items() if np.ndim(v) == 0}


# --- Shared step helpers ---------------------------------------------------------------------------------------
class InputOps:
  """The input ops of `config.input`: preprocess (train and eval), augment (train only), normalize (last).

  Each gets `fold_in(rng, 0 | 1 | 2)` of the key it is given, so pipelines without augmentation give the same
  inputs in training and evaluation.
  """

  def __init__(self, input_config: ml_collections.ConfigDict):
    self.preprocess = augment.build(input_config.preprocess)
    self.augment = augment.build(input_config.augment)
    self.normalize = augment.build(input_config.normalize)

  def __call__(self, rng: jax.Array, images: jax.Array, train: bool) -> jax.Array:
    """Stored images [N, H, W, C] -> model input."""
    images = self.preprocess(jax.random.fold_in(rng, 0), images)
    if train:
      images = self.augment(jax.random.fold_in(rng, 1), images)
    return self.normalize(jax.random.fold_in(rng, 2), images)

  def output_shape(self, stored_shape: Sequence[int], dtype: Any = jnp.uint8) -> tuple[int, ...]:
    """Per-example model-input shape for stored examples of `stored_shape` (traced, nothing computed)."""
    stored = jax.ShapeDtypeStruct((1,) + tuple(stored_shape), dtype)
    return tuple(jax.eval_shape(lambda x: self(jax.random.PRNGKey(0), x, False), stored).shape[1:])


def compute_dtype(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Model constructor arguments for `train.compute_dtype` ({} for float32)."""
  name = config.train.compute_dtype
  return {} if name == "float32" else {"dtype": jnp.dtype(name)}


def supervised_update(state: TrainState, txs: Mapping[str, optax.GradientTransformation], model: nn.Module,
                      micro_batch: dict[str, Any], loss_of: Callable[[Any, dict[str, Any]], tuple[jax.Array, Any]],
                      dropout_rng: jax.Array, grad_accum_steps: int = 1, remat: str = "",
                      network: str = "model") -> tuple[TrainState, Any]:
  """One optimizer update of `network` from a loss of its training-mode outputs, the shared body of supervised
  tasks: gradient accumulation over `grad_accum_steps` micro-batches (`train.grad_accum_steps`), forward-pass
  rematerialization (`train.remat`), batch statistics carried through the micro-batches in order.

  Args:
    state: the train state.
    txs: the optimizers by network.
    model: the network's module, called as `model(*micro["inputs"], train=True)`.
    micro_batch: {"inputs": tuple of [N, ...] inputs, ...targets}; split along N into micro-batches.
    loss_of: (outputs, micro) -> (mean loss to differentiate, per-example values [n, ...] to return).
    dropout_rng: micro-batch i uses `fold_in(dropout_rng, i)`.
    grad_accum_steps: micro-batches per update (1: one plain gradient).
    remat: a `step_memory` rematerialization policy name ("" for none).
    network: the network to update.

  Returns:
    (state with `network` updated, the per-example values of `loss_of` concatenated back to [N, ...]).
  """
  apply = step_memory.maybe_remat(
      lambda variables, inputs, rng: model.apply(variables, *inputs, train=True, rngs={"dropout": rng},
                                                 mutable=["batch_stats"]), remat)

  def micro_batch_grads(params, micro, batch_stats, index):
    def loss_fn(params):
      variables = {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}
      outputs, updates = apply(variables, micro["inputs"], jax.random.fold_in(dropout_rng, index))
      loss, per_example = loss_of(outputs, micro)
      return loss, (per_example, updates.get("batch_stats", batch_stats))

    grads, (per_example, batch_stats) = jax.grad(loss_fn, has_aux=True)(params)
    return grads, (per_example, batch_stats)

  grads, per_example, batch_stats = step_memory.accumulate_gradients(
      micro_batch_grads, state.params[network], micro_batch, state.batch_stats[network], grad_accum_steps)
  return state.apply_gradients(network, grads, txs[network], batch_stats=batch_stats), per_example


def weighted_mean_metrics(sums: Mapping[str, jax.Array], count: int | jax.Array) -> Metrics:
  """{metric: sum over the batch} -> {metric: batch mean}."""
  return {k: v / count for k, v in sums.items()}


# --- Registry ----------------------------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[[ml_collections.ConfigDict, DatasetSpec], Task]] = {}


def register(name: str):
  """Class decorator registering a task (or a factory `(config, spec) -> Task`) under `config.task = name`."""

  def decorator(factory):
    if name in _REGISTRY and _REGISTRY[name] is not factory:
      raise ValueError(f"task {name!r} is registered twice")
    _REGISTRY[name] = factory
    return factory

  return decorator


def names() -> list[str]:
  """Sorted names of the registered tasks."""
  return sorted(_REGISTRY)


def get(config: ml_collections.ConfigDict, spec: DatasetSpec) -> Task:
  """Builds the task named by `config.task` for a dataset split."""
  if config.task not in _REGISTRY:
    raise ConfigError(f"unknown task {config.task!r}; known tasks: {', '.join(names())}")
  return _REGISTRY[config.task](config, spec)
