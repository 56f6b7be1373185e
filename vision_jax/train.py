"""The training loop: one function, `train_and_evaluate(config, workdir)`, in plain sections.

  1. setup        data, task, optimizers and the state template (`train_lib.setup`)
  2. resume       the newest intact checkpoint of the workdir; a finished run keeps its results
  3. compile      jit-compiled train/eval steps with named shardings and a donated state
  4. loop         steps, logging, evaluation, callbacks, checkpoints, stop requests (SIGTERM, Ctrl-C)
  5. wrap-up      the task's reports and pictures, curves.png, summary.json

The loop knows nothing of any task family: the task (`vision_jax.tasks`) provides its networks, steps,
evaluators, unit of throughput and reports.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax.data import datasets
from vision_jax.errors import ConfigError, close_all, os_errors_name
from vision_jax.train_lib import callbacks as callbacks_lib
from vision_jax.train_lib import parallel, run_lock, setup as setup_lib, writers
from vision_jax.train_lib.preemption import StopRequests
from vision_jax.train_lib.progress import Progress

def _eval_line(step: int, epoch: float, metrics: dict[str, Any], seconds: float) -> str:
  shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if np.ndim(v) == 0 and k != "num_examples")
  count = f"{metrics['num_examples']} examples, " if "num_examples" in metrics else ""
  return f"eval step {step} (epoch {epoch:.2f}): {shown} ({count}{seconds:.1f} s)"




def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains `config` in `workdir` (see `_train_and_evaluate`), refusing a workdir another live run is using."""
  with run_lock.held(workdir, enabled=jax.process_index() == 0):
    return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains `config` in `workdir`, resuming from its newest checkpoint, and returns the run summary.

  Writes checkpoints/, best/, metrics.csv, tensorboard/, curves.png, summary.json and the task's reports. A run
  that already finished in `workdir` is not trained again: its summary is returned as it is (or, when the run
  was stopped between its last checkpoint and summary.json, rebuilt from a fresh evaluation).

  Raises:
    UserError subclasses for bad config, data or checkpoints; TrainingDivergedError on a non-finite loss.
  """
  # 1. Setup.
  s = setup_lib.setup(config, workdir)
  try:
    with os_errors_name(workdir):  # the run's files (pictures, reports): a full disk's error names where it hit
      return _resume_and_train(config, workdir, s)
  finally:
    s.checkpointer.close()  # every exit path waits for the checkpoint still being written


def _resume_and_train(config: ml_collections.ConfigDict, workdir: str, s: setup_lib.Setup) -> dict[str, Any]:
  """Sections 2-5 of `_train_and_evaluate` on its setup `s`."""
  cfg, task = config, s.task
  is_chief = jax.process_index() == 0
  per_epoch = s.steps_per_epoch
  eval_every = cfg.eval_every_steps if cfg.eval_every_steps > 0 else per_epoch
  ckpt_every = cfg.checkpoint.every_steps if cfg.checkpoint.every_steps > 0 else per_epoch
  callbacks = callbacks_lib.from_config(cfg.callbacks)
  unit = task.throughput_unit

  # 2. Resume. `elapsed` accumulates over every part of a resumed run.
  elapsed = {"wall_time_sec": 0.0, "train_seconds": 0.0, "examples": 0, "first_step_sec": 0.0}
  restored = s.checkpointer.restore_latest(s.abstract_state, required_meta=("data",))
  data_state, finished_as, first_loss = None, None, None
  if restored is None:
    state = s.init_state()
  else:
    state, meta = restored
    data_state = meta["data"]
    first_loss = meta.get("first_loss")
    elapsed.update(meta.get("elapsed", {}))
    finished_as = meta.get("finished") if meta.get("finished") == "early_stopping" else None
    for name, callback in callbacks.items():
      callback.tracker.load(meta.get("callbacks", {}).get(name, {}))
  start_step = int(state.step)
  if start_step > s.total_steps:
    raise ConfigError(f"the checkpoint in {workdir} is at step {start_step}, past this config's {s.total_steps} "
                      "steps; raise num_train_steps / num_epochs to continue it, or use a new --workdir")
  if start_step == s.total_steps and not finished_as:
    finished_as = "completed"
  if finished_as:
    existing = writers.read_summary(workdir)
    if existing is not None:
      if is_chief:
        print(f"{workdir} holds a finished run (step {start_step}, {finished_as}); its results are kept. "
              "Evaluate it with --mode=eval, or train again in a new --workdir", flush=True)
      return dict(existing, already_finished=True)

  # 3. Compiled steps.
  replicated = parallel.replicated(s.mesh)
  train_step, eval_step = setup_lib.compile_train_step(s), setup_lib.compile_eval_step(s)
  if not finished_as:  # a metric that evaluations will not report fails now, not at the first evaluation
    setup_lib.check_monitored_metrics(s, [s.checkpointer.best_metric] + [c.tracker.metric for c in callbacks.values()])

  # 4. Loop.
  batches, global_batches = setup_lib.train_batches(s, data_state)
  writer = writers.MetricWriter(workdir, enabled=is_chief)
  progress = Progress(s.total_steps, start_step, enabled=is_chief)
  if start_step and is_chief and not finished_as:
    progress.message(f"resumed from {workdir} at step {start_step}")
  examples_per_step = task.examples_per_batch(cfg.input.batch_size)
  pending: list[dict[str, jax.Array]] = []
  last_eval: dict[str, Any] = {}
  stop_reason = finished_as or "completed"
  t_start = t_log = time.time()
  wall_before = elapsed["wall_time_sec"]
  examples_since_log = 0
  step = start_step

  def meta_now(finished: str | None = None):
    now = dict(elapsed, wall_time_sec=wall_before + time.time() - t_start)
    meta = {"data": batches.get_state(), "step": int(state.step), "elapsed": now, "first_loss": first_loss,
            "callbacks": {n: c.tracker.state() for n, c in callbacks.items()}}
    return dict(meta, finished=finished) if finished else meta

  try:
    with StopRequests() as stop:
      while step < s.total_steps:
        state, metrics = train_step(state, next(global_batches))
        pending.append(metrics)
        step += 1
        if step == start_step + 1:  # keep compilation out of the throughput figures
          jax.block_until_ready(metrics)
          if not elapsed["first_step_sec"]:
            elapsed["first_step_sec"] = time.time() - t_start
          t_log = time.time()
        else:
          examples_since_log += examples_per_step
        is_last = step == s.total_steps
        stopping = stop.requested  # read once: a signal arriving later is handled at the next step
        save_now = step % ckpt_every == 0 or is_last or stopping
        if step % cfg.log_every_steps == 0 or save_now or step % eval_every == 0:
          fetched = setup_lib.fetch_finite(pending, step, workdir)
          first_loss = setup_lib.check_not_diverging(fetched, first_loss, step, workdir)
          setup_lib.check_state_finite(state, step, workdir)  # before any save: a NaN update is never kept
          seconds = time.time() - t_log
          elapsed["train_seconds"] += seconds
          elapsed["examples"] += examples_since_log
          shown = setup_lib.scalar_means(fetched)
          shown["learning_rate"] = float(s.schedule(step - 1)) * float(state.lr_scale)
          shown[f"{unit}_per_sec"] = examples_since_log / max(seconds, 1e-9)
          writer.write(step, "train", shown)
          progress.update(step, shown)
          t_log, examples_since_log = time.time(), 0
        if step % eval_every == 0 or is_last:
          t_eval = time.time()
          last_eval = setup_lib.run_evaluation(s, eval_step, state)
          writer.write(step, "eval", last_eval)
          progress.message(_eval_line(step, step / per_epoch, last_eval, time.time() - t_eval))
          if is_chief:
            task.on_evaluation(workdir, state, step, last_eval)
          s.checkpointer.save_best(step, state, meta_now(), last_eval)
          if "reduce_lr" in callbacks:
            new_scale = callbacks["reduce_lr"].on_eval(last_eval, float(state.lr_scale))
            if new_scale != float(state.lr_scale):
              state = state.replace(lr_scale=jax.device_put(jnp.float32(new_scale), replicated))
              progress.message(f"reduce-LR-on-plateau: learning-rate scale now {new_scale:g}")
          if "early_stopping" in callbacks and callbacks["early_stopping"].on_eval(last_eval):
            stop_reason = "early_stopping"
          t_log = time.time()
        done = is_last or stop_reason == "early_stopping"
        if save_now or done:
          s.checkpointer.save(step, state, meta_now(stop_reason if done else None))
        if stopping and not done:
          stop_reason = "preempted"
          progress.message(f"{stop.signal} received: saved a checkpoint at step {step} in {workdir}; rerun the "
                           "same command to resume")
        if done or stop_reason == "preempted":
          break
      # A finished run whose summary was lost: evaluate its final state again. A preempted run leaves at once (its
      # grace period is short); it is evaluated when it resumes and finishes.
      if not last_eval and stop_reason != "preempted":
        last_eval = setup_lib.run_evaluation(s, eval_step, state)
  finally:
    close_all(progress.close, s.checkpointer.close, writer.close)

  # 5. Wrap-up.
  if is_chief:
    for source in (s.train_source, s.eval_source):
      for note in datasets.source_notes(source, int(cfg.input.max_objects)):
        print(note, flush=True)
  wall = wall_before + time.time() - t_start
  summary = {
      "task": cfg.task, "model": task.model_name(), "dataset": cfg.dataset.name, "steps": step,
      "total_steps": s.total_steps, "stop_reason": stop_reason, "wall_time_sec": wall,
      "first_step_sec": elapsed["first_step_sec"], "throughput_unit": unit, f"train_{unit}": elapsed["examples"],
      f"train_{unit}_per_sec": elapsed["examples"] / max(elapsed["train_seconds"], 1e-9),
      "devices": jax.device_count(), "processes": jax.process_count(),
      "final_eval": {k: v if isinstance(v, int) else float(v) for k, v in last_eval.items() if np.ndim(v) == 0},
  }
  if is_chief:
    if last_eval:
      task.write_reports(workdir, last_eval, summary)
    writers.write_curves(workdir, task.curve_metrics)
    writers.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary


def eval_mode(config: ml_collections.ConfigDict, workdir: str,
              ensemble: list[tuple[ml_collections.ConfigDict, str]]) -> list[str]:
  """`--mode=eval` through the task: lines to print (each task writes its own files, e.g. eval.json)."""
  task = _task_only(config)
  return task.eval_mode([(config, workdir)] + list(ensemble), setup_lib)


def predict_mode(config: ml_collections.ConfigDict, workdir: str, paths: list[str]) -> list[str]:
  """`--mode=predict` through the task, from the best (else newest) checkpoint: lines to print."""
  if not paths:
    raise ConfigError("--mode=predict needs input files: pass --images=a.png,b.jpg")
  s = setup_lib.setup(config, workdir)
  state = setup_lib.restore_for_eval(s, workdir)
  return s.task.predict(state, paths)


def _task_only(config: ml_collections.ConfigDict):
  """The task of `config` (its class decides how `--mode=eval` runs), built from the training split's spec."""
  from vision_jax import tasks  # pylint: disable=import-outside-toplevel
  from vision_jax.data import datasets  # pylint: disable=import-outside-toplevel
  _, spec = datasets.load(config.dataset.name, config.dataset.train_split, config.dataset.data_dir or None,
                          max_objects=int(config.input.get("max_objects", 32)))
  return tasks.get(config, spec)
