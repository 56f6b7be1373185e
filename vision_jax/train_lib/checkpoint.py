"""Checkpoints with orbax `CheckpointManager`: periodic saves (last k), a keep-best copy, safe resume.

Layout under the workdir:
  checkpoints/<step>/{state,meta}   periodic and final saves, the newest `keep` are kept
  best/<step>/{state,meta}          the best evaluation so far by `best_metric`

`meta` is JSON: the model identity (name, classes, parameter shapes), the input pipeline position and the
metrics at save time. Orbax writes each step to a temporary directory and renames it when complete, so a
killed save never shadows the previous checkpoint; a newest checkpoint that still fails to restore is skipped
with a warning and the one before it is used.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from vision_jax.errors import CheckpointError
from vision_jax.train_lib.state import STATE_FORMAT

_ITEMS = ("state", "meta")


def run_identity(task: str, model_name: str, task_identity: dict[str, Any], params: Any) -> dict[str, Any]:
  """What must match between a checkpoint and the run that resumes from it.

  Args:
    task: `config.task`.
    model_name: `config.model.name`.
    task_identity: the task's own fields (`Task.identity()`, e.g. the number of classes).
    params: network name -> parameters (arrays or shape structs).
  """
  shapes = {jax.tree_util.keystr(path): list(np.shape(leaf))
            for path, leaf in jax.tree_util.tree_leaves_with_path(params)}
  return {"format": STATE_FORMAT, "task": task, "model": model_name, **task_identity, "param_shapes": shapes}


def _manager(directory: str, keep: int, best_metric: str = "", best_mode: str = "max",
             async_save: bool = True) -> ocp.CheckpointManager:
  # Both managers may save the same step; distinct barrier names keep their multi-host syncs apart.
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=True, enable_async_checkpointing=async_save,
      multiprocessing_options=ocp.options.MultiprocessingOptions(
          barrier_sync_key_prefix=os.path.basename(os.path.normpath(directory))),
      best_fn=(lambda m: m[best_metric]) if best_metric else None, best_mode=best_mode)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_names=_ITEMS)


class Checkpointer:
  """Saves and restores train states of one run directory.

  Args:
    workdir: the run directory.
    identity: `run_identity(...)` of the run being trained.
    keep: how many periodic checkpoints to keep.
    best_metric: eval metric for the keep-best copy ("" to disable).
    best_mode: "max" or "min".
    async_save: write in a background thread (call `wait()` before exiting).
  """

  def __init__(self, workdir: str, identity: dict[str, Any], keep: int = 3, best_metric: str = "",
               best_mode: str = "max", async_save: bool = True):
    self.identity = identity
    self.latest = _manager(os.path.join(workdir, "checkpoints"), keep, async_save=async_save)
    self.best_metric = best_metric
    self.best = (_manager(os.path.join(workdir, "best"), 1, best_metric, best_mode, async_save)
                 if best_metric else None)

  def _args(self, state, meta):
    return ocp.args.Composite(state=ocp.args.StandardSave(state),
                              meta=ocp.args.JsonSave({**meta, "identity": self.identity}))

  def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
    """Saves a periodic checkpoint (no-op if this step is already saved)."""
    if step not in self.latest.all_steps():
      self.latest.save(step, args=self._args(state, meta), force=True)

  def save_best(self, step: int, state: Any, meta: dict[str, Any], metrics: dict[str, float]) -> None:
    """Offers the state to the keep-best manager, which keeps it if `metrics` beat the best so far."""
    if self.best is None or step in self.best.all_steps():
      return
    self.best.save(step, args=self._args(state, meta), metrics={self.best_metric: float(metrics[self.best_metric])},
                   force=True)

  def _check_identity(self, meta: dict[str, Any], directory: str) -> None:
    found = meta.get("identity", {})
    if found.get("format") != self.identity["format"]:
      raise CheckpointError(
          f"{directory} holds a checkpoint of format {found.get('format', 1)} (written by an older vision_jax); this "
          f"version reads format {self.identity['format']}: train again in a new --workdir")
    described = {k: v for k, v in self.identity.items() if k not in ("format", "param_shapes")}
    differing = {k: found.get(k) for k, v in described.items() if found.get(k) != v}
    if differing:
      theirs = ", ".join(f"{k}={v!r}" for k, v in differing.items())
      ours = ", ".join(f"{k}={described[k]!r}" for k in differing)
      raise CheckpointError(f"{directory} holds a checkpoint of another run ({theirs}), not this config's ({ours}); "
                            "use another --workdir or remove the old one")
    if found.get("param_shapes") != self.identity["param_shapes"]:
      diff = sorted(set(map(str, found.get("param_shapes", {}).items())) ^
                    set(map(str, self.identity["param_shapes"].items())))
      raise CheckpointError(f"{directory} holds a checkpoint of {found.get('model')!r} whose parameter shapes "
                            f"differ from this config's ({'; '.join(diff[:4])}); use another --workdir")

  def _restore(self, manager: ocp.CheckpointManager, abstract_state: Any):
    for step in sorted(manager.all_steps(), reverse=True):
      try:
        meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("checkpoint %s/%d is unreadable (%s); trying the previous one", manager.directory, step,
                        str(e).splitlines()[0] if str(e) else type(e).__name__)
        continue
      self._check_identity(meta, str(manager.directory))
      try:
        restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
      except Exception as e:  # pylint: disable=broad-except
        if "tree structures do not match" in str(e):  # an intact checkpoint of another optimizer set-up
          raise CheckpointError(
              f"{manager.directory}/{step} holds a train state laid out differently from this config's (same model, "
              "other optimizer, transfer or per-network settings); use the config and --config overrides the run "
              "was trained with") from None
        logging.warning("checkpoint %s/%d is corrupt (%s); trying the previous one", manager.directory, step,
                        str(e).splitlines()[0] if str(e) else type(e).__name__)
        continue
      return restored["state"], meta
    return None

  def restore_latest(self, abstract_state: Any) -> tuple[Any, dict[str, Any]] | None:
    """The newest readable periodic checkpoint as (state, meta), or None when there is none.

    Args:
      abstract_state: pytree of `jax.ShapeDtypeStruct` (with shardings) describing the state.

    Raises:
      CheckpointError: the workdir holds a checkpoint of another model.
    """
    return self._restore(self.latest, abstract_state)

  def restore_for_eval(self, abstract_state: Any) -> tuple[Any, dict[str, Any]] | None:
    """The best checkpoint if there is one, else the newest periodic one."""
    found = self._restore(self.best, abstract_state) if self.best is not None else None
    return found or self.restore_latest(abstract_state)

  def wait(self) -> None:
    """Blocks until background saves are complete."""
    self.latest.wait_until_finished()
    if self.best is not None:
      self.best.wait_until_finished()

  def close(self) -> None:
    """Finishes pending saves and releases the managers."""
    self.wait()
    self.latest.close()
    if self.best is not None:
      self.best.close()


def load_state_arrays(workdir: str, step: int | None = None, which: str = "checkpoints") -> dict[str, Any]:
  """Reads a saved train state as plain NumPy arrays, without a model or config (for notebooks and tests).

  Args:
    workdir: the run directory.
    step: the step to read; the newest when None.
    which: "checkpoints" (periodic) or "best".

  Returns:
    The state pytree as nested dicts of arrays (keys step, params, batch_stats, opt_state, rng, lr_scale).
  """
  directory = os.path.abspath(os.path.join(workdir, which))
  steps = sorted(int(d) for d in os.listdir(directory) if d.isdigit()) if os.path.isdir(directory) else []
  if step is None and not steps:
    raise CheckpointError(f"no checkpoint under {directory}; train first")
  path = os.path.join(directory, str(steps[-1] if step is None else step), "state")
  # Restore as host NumPy arrays, whatever device topology saved the checkpoint.
  checkpointer = ocp.PyTreeCheckpointer()
  tree = checkpointer.metadata(path).item_metadata.tree
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  restored = {"state": checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))}
  return jax.tree.map(np.asarray, restored["state"])
