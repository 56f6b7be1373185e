"""The input-optimisation runner: `run(config, workdir)` steps an IMAGE (an `InputProblem`'s pytree) instead of
network weights, with the training loop's parts: config, optimizer and schedule (`train_lib.optim`), progress,
metrics.csv + TensorBoard (`writers.MetricWriter`), orbax checkpoints with keep-k and atomic saves
(`checkpoint.Checkpointer`), resume, stop requests (SIGTERM, Ctrl-C), curves.png, summary.json and the problem's
pictures.

  1. setup    the problem (`config.task`), optimizer, state template, checkpointer
  2. resume   the newest intact checkpoint; a finished run keeps its results
  3. compile  one jitted step: (state, constants) -> (state, metrics), the state donated
  4. loop     steps, logging, rendering every `render_every` steps, checkpoints, stop requests
  5. wrap-up  the final image's loss (`final_eval`), its render, curves.png, summary.json

State: `InputOptState(step, image, opt_state, rng)`, checkpointed whole. The problem's `constants()` (a frozen
network's variables, targets) are an ARGUMENT of the jitted step: never compiled in as constants and never
checkpointed; a resumed run rebuilds them. Step `s` draws its randomness from `fold_in(rng, s)`, so a resumed run
repeats an uninterrupted one bit for bit.

Optimizers: every name of `train_lib.optim` with `config.schedule` (Adam by default), and `lbfgs`: optax's L-BFGS
with its zoom line search (`config.optimizer.memory_size` pairs, default 10; the line search chooses the step, so
`learning_rate` and the schedule are not used). L-BFGS reuses the loss and gradient that the line search stored
(`optax.value_and_grad_from_state`); when `project` moves the image, the stored values are marked stale
(value = inf) and recomputed at the next step.

Config keys read: task, seed, problem.*, num_train_steps (optimisation steps), log_every_steps,
checkpoint.every_steps (-1: only at the end and on stops), checkpoint.keep, render_every (0: only the final
image), optimizer.*, schedule.*.
"""

from __future__ import annotations

import os
import time
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vision_jax.errors import ConfigError, close_all
from vision_jax.tasks import input_problem
from vision_jax.train_lib import optim, parallel, setup as setup_lib, writers
from vision_jax.train_lib.checkpoint import Checkpointer, run_identity
from vision_jax.train_lib.preemption import StopRequests
from vision_jax.train_lib.progress import Progress


@flax.struct.dataclass
class InputOptState:
  """Everything an optimisation step reads and writes (checkpointed whole).

  Attributes:
    step: optimisation steps taken (int32 scalar).
    image: the optimised pytree.
    opt_state: the optimizer's state for `image`.
    rng: base PRNG key data (uint32 [2]); step `s` uses `fold_in(rng, s)`.
  """

  step: jax.Array
  image: Any
  opt_state: Any
  rng: jax.Array


def make_transform(config: ml_collections.ConfigDict, total_steps: int) -> tuple[optax.GradientTransformation, Any]:
  """The optimizer of `config.optimizer` and its learning-rate schedule (None for L-BFGS, whose line search
  chooses each step).

  Args:
    config: the experiment config.
    total_steps: optimisation steps of the run (cosine schedules end there; it is also the "epoch" of
      step/exponential decays when `schedule.decay_steps` is 0).
  """
  section = config.optimizer
  if section.name == "lbfgs":
    return optax.lbfgs(memory_size=int(section.get("memory_size", 10))), None
  lr = section.learning_rate
  if not np.isfinite(lr) or lr <= 0:
    raise ConfigError(f"optimizer.learning_rate={lr}; it must be a positive number (e.g. 0.05)")
  schedule = optim.make_schedule(config.schedule, lr, total_steps, total_steps)
  return optim.make_optimizer(section, schedule), schedule


def _step_body(problem: input_problem.InputProblem, tx: optax.GradientTransformation, schedule: Any):
  """(state, constants) -> (state after one update and projection, {loss, metrics..., learning_rate})."""
  lbfgs = schedule is None

  def step(state: InputOptState, constants: Any):
    rng = jax.random.fold_in(state.rng, state.step)

    def value_fn(image):
      return problem.loss(image, constants, rng)[0]

    if lbfgs:
      loss, grads = optax.value_and_grad_from_state(value_fn)(state.image, state=state.opt_state)
      metrics = problem.loss(state.image, constants, rng)[1]
    else:
      (loss, metrics), grads = jax.value_and_grad(lambda x: problem.loss(x, constants, rng), has_aux=True)(
          state.image)
    updates, opt_state = tx.update(grads, state.opt_state, state.image, value=loss, grad=grads, value_fn=value_fn)
    stepped = optax.apply_updates(state.image, updates)
    image = problem.project(stepped)
    if lbfgs:
      learning_rate = optax.tree.get(opt_state, "learning_rate")
      moved = jnp.any(jnp.stack([jnp.any(a != b) for a, b in zip(jax.tree.leaves(image), jax.tree.leaves(stepped))]))
      opt_state = optax.tree.set(opt_state, value=jnp.where(moved, jnp.inf, optax.tree.get(opt_state, "value")))
    else:
      learning_rate = schedule(state.step)
    metrics = dict(metrics, loss=loss, learning_rate=jnp.asarray(learning_rate, jnp.float32))
    return state.replace(step=state.step + 1, image=image, opt_state=opt_state), metrics

  return step


def _check(config: ml_collections.ConfigDict) -> None:
  if config.num_train_steps <= 0:
    raise ConfigError(f"num_train_steps={config.num_train_steps}: an input optimisation counts steps, not "
                      "epochs; set --config.num_train_steps to 1 or more")
  if config.log_every_steps <= 0:
    raise ConfigError(f"log_every_steps={config.log_every_steps} must be a positive integer; e.g. 50")
  if config.checkpoint.keep < 1:
    raise ConfigError(f"checkpoint.keep={config.checkpoint.keep} keeps no checkpoint, so nothing could resume; "
                      "use checkpoint.keep >= 1")


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Optimises the image of the problem `config.task` in `workdir`, resuming from its newest checkpoint.

  Writes checkpoints/, metrics.csv, tensorboard/, the problem's PNGs (image.png, progress/, progress.png),
  curves.png and summary.json. A run that already finished in `workdir` is not run again: its summary is returned
  with `already_finished` set.

  Returns:
    The summary: task, steps, total_steps, stop_reason, wall_time_sec, first_step_sec, final_loss and final_eval
    (the problem's loss and metrics at the final image).

  Raises:
    UserError subclasses for bad config or checkpoints; TrainingDivergedError on a non-finite loss.
  """
  # 1. Setup.
  _check(config)
  problem = input_problem.get_problem(config)
  total = int(config.num_train_steps)
  tx, schedule = make_transform(config, total)
  is_chief = jax.process_index() == 0
  replicated = parallel.replicated(parallel.make_mesh())
  init_rng, step_rng = jax.random.split(jax.random.PRNGKey(config.seed))

  def init_fn():
    image = problem.init_image(init_rng)
    return InputOptState(step=jnp.zeros((), jnp.int32), image=image, opt_state=tx.init(image), rng=step_rng)

  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
                          jax.eval_shape(init_fn))
  identity = run_identity(config.task, problem.model_name, problem.identity(), {"image": abstract.image})
  checkpointer = Checkpointer(workdir, identity, keep=config.checkpoint.keep, best_metric="")
  ckpt_every = config.checkpoint.every_steps if config.checkpoint.every_steps > 0 else total
  render_every = int(config.get("render_every", 0))

  # 2. Resume.
  elapsed = {"wall_time_sec": 0.0, "first_step_sec": 0.0}
  restored = checkpointer.restore_latest(abstract)
  finished_as = None
  if restored is None:
    state = jax.jit(init_fn, out_shardings=replicated)()
  else:
    state, meta = restored
    elapsed.update(meta.get("elapsed", {}))
    finished_as = meta.get("finished")
  start = int(state.step)
  if start > total:
    checkpointer.close()
    raise ConfigError(f"the checkpoint in {workdir} is at step {start}, past this config's {total} steps; raise "
                      "num_train_steps to continue it, or use a new --workdir")
  if start == total:
    finished_as = finished_as or "completed"
  if finished_as:
    existing = writers.read_summary(workdir)
    if existing is not None:
      checkpointer.close()
      if is_chief:
        print(f"{workdir} holds a finished run (step {start}, {finished_as}); its results are kept. "
              "Optimise again in a new --workdir", flush=True)
      return dict(existing, already_finished=True)

  # 3. Compiled step; the constants are an argument, placed once.
  constants = jax.device_put(problem.constants(), replicated)
  step_fn = jax.jit(_step_body(problem, tx, schedule), in_shardings=(replicated, replicated),
                    out_shardings=(replicated, replicated), donate_argnums=0)

  # 4. Loop.
  writer = writers.MetricWriter(workdir, enabled=is_chief)
  progress = Progress(total, start, enabled=is_chief)
  if start and is_chief and not finished_as:
    progress.message(f"resumed from {workdir} at step {start}")
  if start == 0 and is_chief and render_every > 0:  # the starting point, first frame of progress.png
    problem.render(jax.device_get(state.image), workdir, 0)
  pending: list[dict[str, jax.Array]] = []
  stop_reason = finished_as or "completed"
  t_start = t_log = time.time()
  wall_before = elapsed["wall_time_sec"]
  step, steps_since_log = start, 0

  def meta_now(finished: str | None = None) -> dict[str, Any]:
    meta = {"step": step, "elapsed": dict(elapsed, wall_time_sec=wall_before + time.time() - t_start)}
    return dict(meta, finished=finished) if finished else meta

  try:
    with StopRequests() as stop:
      while step < total:
        state, metrics = step_fn(state, constants)
        pending.append(metrics)
        step += 1
        if step == start + 1:  # keep compilation out of the steps-per-second figure
          jax.block_until_ready(metrics)
          elapsed["first_step_sec"] = elapsed["first_step_sec"] or time.time() - t_start
          t_log = time.time()
        else:
          steps_since_log += 1
        is_last = step == total
        stopping = stop.requested  # read once: a signal arriving later is handled at the next step
        save_now = step % ckpt_every == 0 or is_last or stopping
        if step % config.log_every_steps == 0 or save_now:
          fetched = setup_lib.fetch_finite(pending, step, workdir)
          shown = setup_lib.scalar_means(fetched)
          shown["learning_rate"] = float(fetched[-1]["learning_rate"])
          shown["steps_per_sec"] = steps_since_log / max(time.time() - t_log, 1e-9)
          writer.write(step, "train", shown)
          progress.update(step, shown)
          t_log, steps_since_log = time.time(), 0
        if is_chief and (is_last or stopping or (render_every > 0 and step % render_every == 0)):
          problem.render(jax.device_get(state.image), workdir, step)
        if save_now:
          checkpointer.save(step, state, meta_now(stop_reason if is_last else None))
        if stopping and not is_last:
          stop_reason = "preempted"
          progress.message(f"{stop.signal} received: saved a checkpoint at step {step} in {workdir}; rerun the "
                           "same command to resume")
          break
  finally:
    close_all(progress.close, checkpointer.close, writer.close)

  # 5. Wrap-up: the loss of the final image (the logged losses are those before each update).
  final_rng = jax.random.fold_in(state.rng, state.step)
  final_loss, final_metrics = jax.jit(problem.loss)(state.image, constants, final_rng)
  final_eval = {"loss": float(final_loss), **{k: float(v) for k, v in jax.device_get(final_metrics).items()}}
  summary = {
      "task": config.task, "model": problem.model_name, "steps": step, "total_steps": total,
      "stop_reason": stop_reason, "wall_time_sec": wall_before + time.time() - t_start,
      "first_step_sec": elapsed["first_step_sec"], "final_loss": final_eval["loss"], "final_eval": final_eval,
      "throughput_unit": "steps", "devices": jax.device_count(), "processes": jax.process_count(),
  }
  if is_chief:
    if step == start:  # nothing was stepped (a finished run whose summary was lost): draw its image again
      problem.render(jax.device_get(state.image), workdir, step)
    writers.write_curves(workdir, problem.curve_metrics)
    writers.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary


def summary_line(summary: dict[str, Any], workdir: str) -> str:
  """The line the command line prints after `run`."""
  if summary.get("already_finished"):
    return f"{workdir}: finished earlier at step {summary['steps']}; final loss {summary['final_loss']:.6g}"
  shown = " ".join(f"{k} {v:.6g}" for k, v in summary["final_eval"].items())
  return (f"done: {summary['steps']} steps ({summary['stop_reason']}) in {summary['wall_time_sec']:.1f} s; "
          f"final image: {shown}; outputs in {workdir}")
