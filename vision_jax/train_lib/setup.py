"""What every mode builds from a config: mesh, data, task, optimizers, state template, checkpointer; and the
evaluation pass shared by training, `--mode=eval` and `--mode=predict`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vision_jax import tasks
from vision_jax.backends.cpu import rewrites as xla_cpu
from vision_jax.data import datasets, host_resize, pipeline, samplers, subsets
from vision_jax.data.features import DatasetSpec, typed_features
from vision_jax.errors import ConfigError, TrainingDivergedError
from vision_jax.evaluation.evaluators import merge_results
from vision_jax.train_lib import optim, parallel, transfer
from vision_jax.train_lib.checkpoint import Checkpointer, run_identity
from vision_jax.train_lib.state import TrainState


@dataclasses.dataclass
class Setup:
  """Everything a run needs, built from its config by `setup`."""

  config: ml_collections.ConfigDict
  mesh: jax.sharding.Mesh
  task: Any
  train_source: Any
  train_spec: DatasetSpec
  eval_source: Any
  eval_spec: DatasetSpec
  steps_per_epoch: int
  total_steps: int
  sampler: Any
  schedules: dict[str, optax.Schedule]
  txs: dict[str, optax.GradientTransformation]
  init_state: Any  # () -> replicated initial TrainState
  abstract_state: Any
  checkpointer: Checkpointer
  train_second: Any = None  # (source, spec) of dataset.train_split2 (batches carry its images as image2), or None
  eval_second: Any = None  # the same for dataset.eval_split2

  @property
  def schedule(self) -> optax.Schedule:
    """The first network's learning-rate schedule (the one reported as `learning_rate`)."""
    return next(iter(self.schedules.values()))


def check_settings(config: ml_collections.ConfigDict) -> None:
  """Refuses settings that cannot be what anyone means, before anything is built (one-line ConfigErrors)."""
  for key in ("input.batch_size", "input.eval_batch_size", "log_every_steps"):
    section, _, name = key.rpartition(".")
    value = (config[section] if section else config)[name]
    if value <= 0:
      raise ConfigError(f"{key}={value} must be a positive integer; e.g. --config.{key}="
                        f"{ {'log_every_steps': 50}.get(key, 128)}")
  if config.num_train_steps <= 0 and config.num_epochs <= 0:
    raise ConfigError(f"num_epochs={config.num_epochs} trains nothing; set num_epochs >= 1 or num_train_steps >= 1")
  if config.checkpoint.keep < 1:
    raise ConfigError(f"checkpoint.keep={config.checkpoint.keep} keeps no checkpoint, so nothing could resume; "
                      "use checkpoint.keep >= 1")
  if not config.get("optimizers"):  # one network's learning rate can be checked before the task exists
    check_optimizers(config, ("model",))


def check_optimizers(config: ml_collections.ConfigDict, networks) -> None:
  """Every `optimizers.<network>` names a network, and every network's learning rate is a positive number."""
  unknown = sorted(set(config.get("optimizers") or {}) - set(networks))
  if unknown:
    raise ConfigError(f"config.optimizers names {', '.join(unknown)}, which this task does not have; its networks "
                      f"are {', '.join(networks)}")
  for name, section in optimizer_sections(config, networks).items():
    lr = section.learning_rate
    if not math.isfinite(lr) or lr <= 0:
      raise ConfigError(f"the learning rate of {name!r} is {lr}; it must be a positive number (e.g. 1e-3)")


def optimizer_sections(config: ml_collections.ConfigDict, networks) -> dict[str, ml_collections.ConfigDict]:
  """Each network's optimizer section: `config.optimizer` overridden by `config.optimizers.<network>` if any."""
  per_network = config.get("optimizers") or {}
  out = {}
  for name in networks:
    section = ml_collections.ConfigDict(config.optimizer.to_dict())
    if name in per_network:
      section.update(dict(per_network[name]))
    out[name] = section
  return out


def _best_metric(config: ml_collections.ConfigDict, task: Any) -> tuple[str, str]:
  metric, mode = config.checkpoint.best_metric, config.checkpoint.best_mode
  if metric == "auto":
    metric = task.best_metric[0]
  if mode == "auto":
    mode = task.best_metric[1] if metric == task.best_metric[0] else ("min" if "loss" in metric else "max")
  if mode not in ("min", "max"):
    raise ConfigError(f"checkpoint.best_mode={mode!r}; use max, min or auto")
  return metric, mode


def setup(config: ml_collections.ConfigDict, workdir: str) -> Setup:
  """Builds everything a run needs from its config (data, task, optimizers, state template, checkpointer)."""
  check_settings(config)
  mesh = parallel.make_mesh()
  parallel.check_batch_size(config.input.batch_size, "input.batch_size")
  parallel.check_batch_size(config.input.eval_batch_size, "input.eval_batch_size")
  data_dir = config.dataset.data_dir or None
  max_objects = int(config.input.get("max_objects", 32))
  train_source, train_spec = datasets.load(config.dataset.name, config.dataset.train_split, data_dir,
                                           max_objects=max_objects)
  eval_source, eval_spec = datasets.load(config.dataset.name, config.dataset.eval_split, data_dir,
                                         max_objects=max_objects)
  # class subsets: of the label, else of an identity (LFW's people); a split with neither is an error only if set
  train_source, train_spec = subsets.from_config(config.dataset, train_source, train_spec, train=True)
  eval_source, eval_spec = subsets.from_config(config.dataset, eval_source, eval_spec, train=False)
  train_second = eval_second = None
  if config.dataset.get("train_split2"):  # a second split read beside the first as image2 (pipeline module doc)
    train_second = datasets.load(config.dataset.name, config.dataset.train_split2, data_dir, max_objects=max_objects)
    eval_second = datasets.load(config.dataset.name, config.dataset.eval_split2 or config.dataset.eval_split,
                                data_dir, max_objects=max_objects)
  if config.input.image_size <= 0:  # small splits of fixed-shape examples: decoded once, served from memory
    train_source = pipeline.cache_in_memory(train_source, train_spec, config.input.cache_mib)
    eval_source = pipeline.cache_in_memory(eval_source, eval_spec, config.input.cache_mib)
    train_second, eval_second = [(pipeline.cache_in_memory(*second, config.input.cache_mib), second[1])
                                 if second else None for second in (train_second, eval_second)]
  else:  # examples are resized on the host to a fixed square, annotations moved along
    train_spec = resized_spec(train_spec, config.input.image_size, config.input.resize)
    eval_spec = resized_spec(eval_spec, config.input.image_size, config.input.resize)
    train_second, eval_second = [(second[0], resized_spec(second[1], config.input.image_size, config.input.resize))
                                 if second else None for second in (train_second, eval_second)]
  sampler = make_sampler(config.input)
  task = tasks.get(config, pipeline.paired_spec(train_spec, train_second[1]) if train_second else train_spec)
  steps_per_epoch = pipeline.steps_per_epoch(train_spec, config.input.batch_size)
  if steps_per_epoch == 0:
    raise ConfigError(f"input.batch_size={config.input.batch_size} exceeds the {train_spec.num_examples} "
                      "training examples; lower it")
  total_steps = config.num_train_steps if config.num_train_steps > 0 else config.num_epochs * steps_per_epoch

  networks = list(task.networks())
  check_optimizers(config, networks)
  schedules, txs = {}, {}
  for name, section in optimizer_sections(config, networks).items():
    schedules[name] = optim.make_schedule(config.schedule, section.learning_rate, total_steps, steps_per_epoch)
    txs[name] = optim.make_optimizer(section, schedules[name])
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  replicated = parallel.replicated(mesh)
  pretrained_init = None
  if "model" in txs:  # transfer learning applies to the network called "model"
    txs["model"], pretrained_init = transfer.prepare(config, task, txs, init_rng, train_rng, replicated)

  def init_fn():
    return TrainState.create(task.init_variables(init_rng), txs, train_rng,
                             task.init_extras(jax.random.fold_in(init_rng, 1)))

  init_state = pretrained_init or jax.jit(init_fn, out_shardings=replicated)
  abstract_state = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
                                jax.eval_shape(init_fn))
  identity = run_identity(config.task, config.model.name, task.identity(), abstract_state.params)
  best_metric, best_mode = _best_metric(config, task)
  checkpointer = Checkpointer(workdir, identity, keep=config.checkpoint.keep, best_metric=best_metric,
                              best_mode=best_mode)
  return Setup(config, mesh, task, train_source, train_spec, eval_source, eval_spec, steps_per_epoch, total_steps,
               sampler, schedules, txs, init_state, abstract_state, checkpointer, train_second, eval_second)


def resized_spec(spec: DatasetSpec, size: int, mode: str) -> DatasetSpec:
  """The spec of examples resized on the host to `size` x `size` (`host_resize`): image shape and typed features."""
  if mode not in ("center_crop", "letterbox"):
    raise ConfigError(f"input.resize={mode!r}; use center_crop or letterbox")
  features = host_resize.resized_features(typed_features(spec), size, spec.image_key)
  carried = [k for k in features if k not in (spec.image_key, spec.label_key)]
  has_geometry = any(f.kind in ("boxes", "mask", "instance_masks", "keypoints") for f in features.values())
  if not (mode == "letterbox" or has_geometry):  # classification batches keep exactly their keys
    carried.remove("resize_info")
    features.pop("resize_info")
  return dataclasses.replace(spec, image_shape=tuple(features[spec.image_key].shape), features=features,
                             extra_features={k: tuple(features[k].shape) for k in carried})


def make_sampler(input_config: ml_collections.ConfigDict) -> Any:
  """The sampler of `input.sampler` with its options (`vision_jax.data.samplers`)."""
  name = input_config.sampler
  options = {"balanced": {"examples_per_class": input_config.examples_per_class},
             "pairs": {"positive_fraction": input_config.positive_fraction},
             "episodes": {"ways": input_config.ways, "shots": input_config.shots, "queries": input_config.queries,
                          "classes": tuple(int(c) for c in str(input_config.episode_classes).split(",") if c.strip())},
             }.get(name, {})
  return samplers.build(name, **options)


def compile_train_step(s: Setup):
  """The loop's train step: the task's step with the optimizers bound, then `state.step + 1`; jitted with a
  replicated, donated state and a batch-sharded batch, with the XLA:CPU rewrites on CPU."""
  def step(state, batch):
    state, metrics = s.task.train_step(state, batch, txs=s.txs)
    return state.replace(step=state.step + 1), metrics

  replicated = parallel.replicated(s.mesh)
  return xla_cpu.jit_train_step(step, s.config.compile.xla_cpu_tuning,
                                in_shardings=(replicated, parallel.batch_sharded(s.mesh)),
                                out_shardings=(replicated, replicated), donate_argnums=0)


def train_batches(s: Setup, data_state: dict[str, Any] | None = None):
  """The loop's training batches as (resumable grain iterator of local batches, generator of global batches)."""
  cfg = s.config.input
  dataset = pipeline.train_dataset(s.train_source, s.train_spec, cfg.batch_size, s.total_steps, s.config.seed,
                                   pipeline.this_process(), cfg.num_threads, cfg.prefetch, cfg.image_size,
                                   cfg.resize, cfg.min_visible, s.sampler, s.train_second)
  local = pipeline.iterate(dataset, data_state)
  return local, (parallel.global_batch(batch, s.mesh) for batch in local)


def compile_eval_step(s: Setup):
  """The task's eval step, jitted with a replicated state, a batch-sharded batch and replicated outputs."""
  return xla_cpu.jit_step(s.task.eval_step, s.config.compile.xla_cpu_tuning,
                          in_shardings=(parallel.replicated(s.mesh), parallel.batch_sharded(s.mesh)),
                          out_shardings=parallel.replicated(s.mesh))


def eval_batches(s: Setup):
  """One in-order pass over the eval split as padded global batches (with a `mask`)."""
  cfg = s.config.input
  dataset = pipeline.eval_dataset(s.eval_source, s.eval_spec, cfg.eval_batch_size, pipeline.this_process(),
                                  cfg.num_threads, cfg.prefetch, cfg.image_size, cfg.resize, cfg.min_visible,
                                  s.eval_second)
  return (parallel.global_batch(local_batch, s.mesh) for local_batch in dataset)


def run_evaluation(s: Setup, eval_step, state: TrainState) -> dict[str, Any]:
  """One pass over the eval split (every example exactly once) through the task's evaluators."""
  evaluators = s.task.evaluators()
  for evaluator in evaluators:
    evaluator.reset()
  for batch in eval_batches(s):
    outputs = jax.device_get(eval_step(state, batch))
    for evaluator in evaluators:
      evaluator.update(outputs)
  return merge_results(evaluators)


def restore_for_eval(s: Setup, workdir: str) -> TrainState:
  """The best (else newest) checkpoint of `workdir`; raises ConfigError when there is none."""
  restored = s.checkpointer.restore_for_eval(s.abstract_state)
  s.checkpointer.close()
  if restored is None:
    raise ConfigError(f"no checkpoint in {workdir}; train first (--mode=train) or point --workdir at a run")
  return restored[0]


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Restores the best (else newest) checkpoint in `workdir` and evaluates it on the eval split."""
  s = setup(config, workdir)
  state = restore_for_eval(s, workdir)
  metrics = run_evaluation(s, compile_eval_step(s), state)
  metrics["step"] = int(state.step)
  return metrics


def all_finite(values: list[Mapping[str, Any]]) -> bool:
  """Whether every logged metric value is finite."""
  return all(math.isfinite(v) for m in values for v in m.values())


def fetch_finite(pending: list[Any], step: int, workdir: str) -> list[dict[str, Any]]:
  """The metrics of the steps since the last log, fetched to the host (and `pending` emptied).

  Raises:
    TrainingDivergedError: a non-finite value; the last good checkpoint is kept.
  """
  fetched = jax.device_get(pending)
  pending.clear()
  if not all_finite(fetched):
    raise TrainingDivergedError(
        f"the training loss became non-finite by step {step}; the last good checkpoint in {workdir} is kept: lower "
        "optimizer.learning_rate or set optimizer.grad_clip_norm, then rerun")
  return fetched


DIVERGENCE_FACTOR = 1e6  # a loss this many times its first value (or 1, if larger) is divergence


def check_not_diverging(fetched: list[Mapping[str, Any]], first_loss: float | None, step: int,
                        workdir: str) -> float | None:
  """Stops a run whose training `loss` exploded (finite but over `DIVERGENCE_FACTOR` x max(first loss, 1)).

  Args:
    fetched: the logged steps' metrics (`fetch_finite`); tasks without a `loss` metric are not checked.
    first_loss: the run's first logged loss (kept in the checkpoint meta), None before it is known.

  Returns:
    The first loss (from `fetched` when it was None).

  Raises:
    TrainingDivergedError: the loss exploded; the last good checkpoint is kept.
  """
  losses = [float(m["loss"]) for m in fetched if "loss" in m and np.ndim(m["loss"]) == 0]
  if not losses:
    return first_loss
  first = losses[0] if first_loss is None else first_loss
  limit = DIVERGENCE_FACTOR * max(abs(first), 1.0)
  if max(abs(v) for v in losses) > limit:
    raise TrainingDivergedError(
        f"the training loss diverged to {max(losses, key=abs):.3g} by step {step} (first loss {first:.3g}); the last "
        f"good checkpoint in {workdir} is kept: lower optimizer.learning_rate or set optimizer.grad_clip_norm, "
        "then rerun")
  return first


def evaluation_metric_names(s: Setup) -> set[str] | None:
  """The scalar metrics an evaluation of this task reports, found without evaluating: the eval step is traced
  on one batch's shapes (`jax.eval_shape`) and fresh evaluators read ones (True for masks) of its outputs.

  Returns:
    The names, or None when they cannot be found that way (an evaluator that cannot digest such outputs).
  """
  cfg = s.config.input
  try:
    dataset = pipeline.eval_dataset(s.eval_source, s.eval_spec, jax.process_count(), pipeline.this_process(), 1, 1,
                                    cfg.image_size, cfg.resize, cfg.min_visible)
    batch = next(iter(dataset))
    shapes = jax.eval_shape(s.task.eval_step, s.abstract_state, batch)
    outputs = jax.tree.map(lambda x: np.ones(x.shape, x.dtype), shapes)  # counts of 1: no division by zero
    evaluators = s.task.evaluators()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
      warnings.simplefilter("ignore")
      for evaluator in evaluators:
        evaluator.reset()
        evaluator.update(outputs)
      metrics = merge_results(evaluators)
  except Exception:  # pylint: disable=broad-except  (unknown now: checked at the first evaluation instead)
    return None
  return {k for k, v in metrics.items() if np.ndim(v) == 0}


def check_monitored_metrics(s: Setup, metrics: list[str]) -> None:
  """Raises ConfigError before the first step when a monitored metric (keep-best, callbacks) is not one that
  evaluations report (`evaluation_metric_names`); "" entries (disabled) are ignored."""
  wanted = [m for m in metrics if m]
  names = evaluation_metric_names(s) if wanted else None
  if names is None or s.task.best_metric[0] not in names:  # not found, or not all: checked at the first evaluation
    return
  for metric in wanted:
    if metric not in names:
      raise ConfigError(f"the monitored metric {metric!r} (checkpoint.best_metric or a callback's metric) is not among "
                        f"this task's evaluation metrics ({', '.join(sorted(names))}); pick one of them")


@jax.jit
def _state_is_finite(state: TrainState) -> jax.Array:
  leaves = [x for x in jax.tree.leaves((state.params, state.batch_stats, state.opt_state, state.extras))
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def check_state_finite(state: TrainState, step: int, workdir: str) -> None:
  """Raises TrainingDivergedError when any parameter, statistic or optimizer moment is not finite (an update
  can overflow while the loss that produced it was still finite), so such a state is never checkpointed."""
  if not bool(_state_is_finite(state)):
    raise TrainingDivergedError(
        f"the train state became non-finite by step {step} (the loss was still finite); the last good checkpoint "
        f"in {workdir} is kept: lower optimizer.learning_rate or set optimizer.grad_clip_norm, then rerun")


def scalar_means(fetched: list[Mapping[str, Any]]) -> dict[str, float]:
  """Means over logged steps of each scalar train metric."""
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[-1]}
