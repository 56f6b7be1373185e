"""The training loop: one function, `train_and_evaluate(config, workdir)`, in plain sections.

  1. data and task      datasets by name, the task (model, loss, metrics), batch-size checks
  2. state              optimizer, initial state (replicated over the mesh), resume from the workdir
  3. compiled steps     jit-compiled train/eval steps with named shardings and a donated state
  4. loop               steps, logging, evaluation, callbacks, checkpoints, preemption
  5. wrap-up            final evaluation, plots, summary.json

`evaluate(config, workdir)` restores a checkpoint and evaluates it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax.train_lib import callbacks as callbacks_lib
from vision_jax import plots, tasks
from vision_jax.train_lib import optim, parallel, transfer, writers as metric_writers
from vision_jax.backends.cpu import rewrites as xla_cpu
from vision_jax.train_lib.checkpoint import Checkpointer, model_identity
from vision_jax.data import datasets, pipeline, subsets
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError, TrainingDivergedError
from vision_jax.evaluation import classification as cls_metrics
from vision_jax.train_lib.progress import Progress
from vision_jax.train_lib.state import TrainState


@dataclasses.dataclass
class Setup:
  """What every mode builds from a config: mesh, data, task, optimizer, state template, checkpointer."""

  config: ml_collections.ConfigDict
  mesh: jax.sharding.Mesh
  task: Any
  train_source: Any
  train_spec: DatasetSpec
  eval_source: Any
  eval_spec: DatasetSpec
  steps_per_epoch: int
  total_steps: int
  schedule: Any
  tx: Any
  init_state: Any  # jitted: () -> replicated initial TrainState
  abstract_state: Any
  checkpointer: Checkpointer


def setup(config: ml_collections.ConfigDict, workdir: str) -> Setup:
  """Builds everything a run needs from its config (sections 1 and 2 of the loop)."""
  # 1. Data and task.
  mesh = parallel.make_mesh()
  parallel.check_batch_size(config.input.batch_size, "input.batch_size")
  parallel.check_batch_size(config.input.eval_batch_size, "input.eval_batch_size")
  data_dir = config.dataset.data_dir or None
  train_source, train_spec = datasets.load(config.dataset.name, config.dataset.train_split, data_dir)
  eval_source, eval_spec = datasets.load(config.dataset.name, config.dataset.eval_split, data_dir)
  train_source, train_spec = subsets.from_config(config.dataset, train_source, train_spec, train=True)
  eval_source, eval_spec = subsets.from_config(config.dataset, eval_source, eval_spec, train=False)
  if config.input.image_size <= 0:  # small splits of fixed-shape images: decoded once, served from memory
    train_source = pipeline.cache_in_memory(train_source, train_spec, config.input.cache_mib)
    eval_source = pipeline.cache_in_memory(eval_source, eval_spec, config.input.cache_mib)
  else:  # images are resized on the host to a fixed square
    size = config.input.image_size
    train_spec = dataclasses.replace(train_spec, image_shape=(size, size, train_spec.image_shape[-1]))
    eval_spec = dataclasses.replace(eval_spec, image_shape=(size, size, eval_spec.image_shape[-1]))
  task = tasks.get(config, train_spec)
  steps_per_epoch = pipeline.steps_per_epoch(train_spec, config.input.batch_size)
  if steps_per_epoch == 0:
    raise ConfigError(f"input.batch_size={config.input.batch_size} exceeds the {train_spec.num_examples} "
                      "training examples; lower it")
  total_steps = config.num_train_steps if config.num_train_steps > 0 else config.num_epochs * steps_per_epoch

  # 2. State.
  schedule = optim.make_schedule(config.schedule, config.optimizer.learning_rate, total_steps, steps_per_epoch)
  tx = optim.make_optimizer(config.optimizer, schedule)
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  replicated = parallel.replicated(mesh)
  tx, pretrained_init = transfer.prepare(config, task, tx, init_rng, train_rng, replicated)

  def init_fn():
    return TrainState.create(task.init_variables(init_rng), tx, train_rng)

  init_state = pretrained_init or jax.jit(init_fn, out_shardings=replicated)
  abstract_state = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
                                jax.eval_shape(init_fn))
  identity = model_identity(config.model.name, task.num_classes, abstract_state.params)
  checkpointer = Checkpointer(workdir, identity, keep=config.checkpoint.keep,
                              best_metric=config.checkpoint.best_metric, best_mode=config.checkpoint.best_mode)
  return Setup(config, mesh, task, train_source, train_spec, eval_source, eval_spec, steps_per_epoch,
               total_steps, schedule, tx, init_state, abstract_state, checkpointer)


def _train_step_body(s: Setup):
  """The task's train step with the optimizer bound and, on CPU, materialized convolution inputs."""
  tuned = xla_cpu.tuning_enabled(s.config.compile.xla_cpu_tuning)

  def step(state, batch):
    with xla_cpu.train_step_rewrites(tuned):
      return s.task.train_step(state, batch, tx=s.tx)

  return step


def _compile_eval_step(s: Setup):
  return xla_cpu.jit_step(s.task.eval_step, s.config.compile.xla_cpu_tuning,
                          in_shardings=(parallel.replicated(s.mesh), parallel.batch_sharded(s.mesh)),
                          out_shardings=parallel.replicated(s.mesh))


def eval_batches(s: Setup):
  """One in-order pass over the eval split as padded global batches ({"image", "label", "mask"})."""
  dataset = pipeline.eval_dataset(s.eval_source, s.eval_spec, s.config.input.eval_batch_size,
                                  pipeline.this_process(), s.config.input.num_threads, s.config.input.prefetch,
                                  s.config.input.image_size)
  return (parallel.global_batch(local_batch, s.mesh) for local_batch in dataset)


def run_evaluation(s: Setup, eval_step, state: TrainState) -> dict[str, Any]:
  """One pass over the eval split (every example exactly once); returns the task's metrics."""
  totals = None
  for batch in eval_batches(s):
    sums = eval_step(state, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  return s.task.reduce_eval(jax.tree.map(np.asarray, totals))


def _eval_line(step: int, epoch: float, metrics: dict[str, Any], seconds: float) -> str:
  shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if np.ndim(v) == 0 and k != "num_examples")
  return f"eval step {step} (epoch {epoch:.2f}): {shown} ({metrics['num_examples']} examples, {seconds:.1f} s)"


class _Preemption:
  """Turns SIGTERM into a flag checked between steps, so the loop can save and exit cleanly."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread: leave signals alone
      self._previous = None
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _all_finite(values: list[dict[str, float]]) -> bool:
  return all(math.isfinite(v) for m in values for v in m.values())


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains `config` in `workdir`, resuming from its newest checkpoint, and returns the run summary.

  Writes checkpoints/, best/, metrics.csv, tensorboard/, curves.png, confusion_matrix.png, summary.json.

  Raises:
    UserError subclasses for bad config, data or checkpoints; TrainingDivergedError on a non-finite loss.
  """
  s = setup(config, workdir)
  is_chief = jax.process_index() == 0
  cfg = config
  per_epoch = s.steps_per_epoch
  eval_every = cfg.eval_every_steps if cfg.eval_every_steps > 0 else per_epoch
  ckpt_every = cfg.checkpoint.every_steps if cfg.checkpoint.every_steps > 0 else per_epoch
  callbacks = callbacks_lib.from_config(cfg.callbacks)

  # 2b. Resume.
  restored = s.checkpointer.restore_latest(s.abstract_state)
  data_state = None
  if restored is None:
    state = s.init_state()
  else:
    state, meta = restored
    data_state = meta["data"]
    for name, callback in callbacks.items():
      callback.tracker.load(meta.get("callbacks", {}).get(name, {}))
  start_step = int(state.step)

  # 3. Compiled steps.
  replicated, batch_sharding = parallel.replicated(s.mesh), parallel.batch_sharded(s.mesh)
  train_step = xla_cpu.jit_step(_train_step_body(s), cfg.compile.xla_cpu_tuning,
                                in_shardings=(replicated, batch_sharding), out_shardings=(replicated, replicated),
                                donate_argnums=0)
  eval_step = _compile_eval_step(s)

  # 4. Loop.
  dataset = pipeline.train_dataset(s.train_source, s.train_spec, cfg.input.batch_size, s.total_steps, cfg.seed,
                                   pipeline.this_process(), cfg.input.num_threads, cfg.input.prefetch,
                                   cfg.input.image_size)
  batches = pipeline.iterate(dataset, data_state)
  writer = metric_writers.MetricWriter(workdir, enabled=is_chief)
  progress = Progress(s.total_steps, start_step, enabled=is_chief)
  if start_step and is_chief:
    progress.message(f"resumed from {workdir} at step {start_step}")

  def meta_now():
    return {"data": batches.get_state(), "step": int(state.step),
            "callbacks": {n: c.tracker.state() for n, c in callbacks.items()}}

  pending: list[dict[str, jax.Array]] = []
  last_eval: dict[str, Any] = {}
  stop_reason = "completed"
  t_start = time.time()
  t_log, images_since_log, images_total, train_seconds = time.time(), 0, 0, 0.0
  step, first_step_sec = start_step, 0.0
  with _Preemption() as preemption:
    while step < s.total_steps:
      state, metrics = train_step(state, parallel.global_batch(next(batches), s.mesh))
      pending.append(metrics)
      step += 1
      if step == start_step + 1:  # keep compilation out of the throughput figures
        jax.block_until_ready(metrics)
        first_step_sec, t_log = time.time() - t_start, time.time()
      else:
        images_since_log += cfg.input.batch_size
      is_last = step == s.total_steps
      preempted = preemption.requested  # read once: a signal arriving later is handled at the next step
      save_now = step % ckpt_every == 0 or is_last or preempted
      if step % cfg.log_every_steps == 0 or save_now or step % eval_every == 0:
        fetched = jax.device_get(pending)
        pending.clear()
        if not _all_finite(fetched):
          s.checkpointer.wait()
          raise TrainingDivergedError(
              f"the training loss became non-finite by step {step}; the last good checkpoint in {workdir} "
              "is kept: lower optimizer.learning_rate or set optimizer.grad_clip_norm, then rerun")
        elapsed = time.time() - t_log
        train_seconds += elapsed
        images_total += images_since_log
        shown = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[-1]}
        shown["learning_rate"] = float(s.schedule(step - 1)) * float(state.lr_scale)
        shown["images_per_sec"] = images_since_log / max(elapsed, 1e-9)
        writer.write(step, "train", shown)
        progress.update(step, shown)
        t_log, images_since_log = time.time(), 0
      if step % eval_every == 0 or is_last:
        t_eval = time.time()
        last_eval = run_evaluation(s, eval_step, state)
        writer.write(step, "eval", last_eval)
        progress.message(_eval_line(step, step / per_epoch, last_eval, time.time() - t_eval))
        s.checkpointer.save_best(step, state, meta_now(), last_eval)
        if "reduce_lr" in callbacks:
          new_scale = callbacks["reduce_lr"].on_eval(last_eval, float(state.lr_scale))
          if new_scale != float(state.lr_scale):
            state = state.replace(lr_scale=jax.device_put(jnp.float32(new_scale), replicated))
            progress.message(f"reduce-LR-on-plateau: learning-rate scale now {new_scale:g}")
        if "early_stopping" in callbacks and callbacks["early_stopping"].on_eval(last_eval):
          stop_reason = "early_stopping"
        t_log = time.time()
      if save_now or stop_reason != "completed":
        s.checkpointer.save(step, state, meta_now())
      if preempted:
        stop_reason = "preempted"
        progress.message(f"SIGTERM received: saved a checkpoint at step {step} in {workdir}; rerun to resume")
      if stop_reason != "completed":
        break
  progress.close()
  s.checkpointer.close()
  writer.close()

  # 5. Wrap-up.
  summary = {
      "model": cfg.model.name, "dataset": cfg.dataset.name, "steps": step, "total_steps": s.total_steps,
      "stop_reason": stop_reason, "wall_time_sec": time.time() - t_start, "first_step_sec": first_step_sec,
      "train_images_per_sec": images_total / max(train_seconds, 1e-9),
      "devices": jax.device_count(), "processes": jax.process_count(),
      "final_eval": {k: v for k, v in last_eval.items() if np.ndim(v) == 0},
  }
  if is_chief:
    _write_reports(workdir, summary, last_eval, s.eval_spec.class_names)
  return summary


def _write_reports(workdir: str, summary: dict[str, Any], last_eval: dict[str, Any],
                   class_names: tuple[str, ...]) -> None:
  csv_path = os.path.join(workdir, "metrics.csv")
  if os.path.exists(csv_path):
    plots.plot_curves(metric_writers.read_csv(csv_path), os.path.join(workdir, "curves.png"))
  if "confusion" in last_eval:
    plots.plot_confusion_matrix(last_eval["confusion"], class_names, os.path.join(workdir, "confusion_matrix.png"))
  if "per_class_f1" in last_eval:
    summary["per_class"] = cls_metrics.per_class_report(last_eval, class_names)
  metric_writers.write_json(os.path.join(workdir, "summary.json"), summary)


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Restores the best (else newest) checkpoint in `workdir` and evaluates it on the eval split."""
  s = setup(config, workdir)
  state = restore_for_eval(s, workdir)
  metrics = run_evaluation(s, _compile_eval_step(s), state)
  metrics["step"] = int(state.step)
  return metrics


def restore_for_eval(s: Setup, workdir: str) -> TrainState:
  """The best (else newest) checkpoint of `workdir`; raises ConfigError when there is none."""
  restored = s.checkpointer.restore_for_eval(s.abstract_state)
  s.checkpointer.close()
  if restored is None:
    raise ConfigError(f"no checkpoint in {workdir}; train first (--mode=train) or point --workdir at a run")
  return restored[0]
