"""Checkpoints with orbax `CheckpointManager`: periodic saves (last k), a keep-best copy, safe resume.

Layout under the workdir:
  checkpoints/<step>/{state,meta}   periodic and final saves, the newest `keep` are kept
  best/<step>/{state,meta}          the best evaluation so far by `best_metric`

`meta` is JSON: the model identity (name, classes, parameter shapes), the input pipeline position, the
metrics at save time, a SHA-256 of every state array (`state_sha256`) and of the meta itself (`meta_sha256`).
Orbax writes each step to a temporary directory and renames it when complete, so a killed save never shadows
the previous checkpoint. At restore the checksums are verified: a checkpoint that fails to read or to verify
(flipped bits, garbage or incomplete meta) is moved to `<workdir>/corrupt/` with a warning and the newest
intact one before it is used.

Clean-up of old steps is orbax's, which deletes whole step directories (following a symlinked one with its
parallel deleter). So before the managers are built and before every save, `checkpoints/` and `best/` are
checked to hold only what we wrote: a symlink or a step-named directory without orbax's metadata is refused
with one line (`CheckpointError`), never deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from typing import Any, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from vision_jax.errors import CheckpointError, ConfigError, close_all, os_errors_name
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


def state_sha256(state: Any) -> dict[str, str]:
  """SHA-256 of every leaf of a state (its dtype, shape and bytes), keyed by tree path.

  Args:
    state: a pytree of arrays (replicated jax arrays: one replica is read).
  """
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(state):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      leaf = leaf.addressable_shards[0].data
    array = np.ascontiguousarray(jax.device_get(leaf))
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    out[jax.tree_util.keystr(path)] = digest.hexdigest()
  return out


def meta_sha256(meta: dict[str, Any]) -> str:
  """SHA-256 of a meta dict's canonical JSON, without its own `meta_sha256` entry."""
  body = {k: v for k, v in meta.items() if k != "meta_sha256"}
  return hashlib.sha256(json.dumps(body, sort_keys=True, default=float).encode()).hexdigest()


_ORBAX_MARK = "_CHECKPOINT_METADATA"  # written by orbax into a step directory it commits
_COMMIT_MARK = "commit_success.txt"  # orbax's commit marker where it does not rename (and before the metadata)


def _written_by_us(path: str) -> bool:
  """A step directory our checkpointer made: orbax's marks, or our item directories (a save cut by a kill)."""
  return (any(os.path.isfile(os.path.join(path, mark)) for mark in (_ORBAX_MARK, _COMMIT_MARK))
          or any(os.path.isdir(os.path.join(path, item)) for item in _ITEMS))


def check_own_entries(directory: str) -> None:
  """Refuses a checkpoint directory holding entries that clean-up could wrongly delete.

  Raises:
    CheckpointError: an entry of `directory` is a symlink, or a step-named directory orbax did not write.
  """
  if not os.path.isdir(directory):
    return
  for name in sorted(os.listdir(directory)):
    path = os.path.join(directory, name)
    if os.path.islink(path):
      raise CheckpointError(f"{path} is a symlink; checkpoint clean-up would delete what it points to: move it out "
                            f"of {directory} (or use another --workdir)")
    if name.isdigit() and not _written_by_us(path):
      raise CheckpointError(f"{path} was not written by vision_jax (no checkpoint items) and clean-up would delete "
                            f"it: move it out of {directory} (or use another --workdir)")


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
    self.workdir = workdir
    self._closed = False
    self.is_chief = jax.process_index() == 0
    for which in ("checkpoints", "best"):
      check_own_entries(os.path.join(workdir, which))
    self.latest = _manager(os.path.join(workdir, "checkpoints"), keep, async_save=async_save)
    self.best_metric = best_metric
    self.best = (_manager(os.path.join(workdir, "best"), 1, best_metric, best_mode, async_save)
                 if best_metric else None)

  def _args(self, state, meta):
    meta = {**meta, "identity": self.identity, "state_sha256": state_sha256(state)}
    meta["meta_sha256"] = meta_sha256(meta)
    return ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))

  def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
    """Saves a periodic checkpoint (no-op if this step is already saved)."""
    if step not in self.latest.all_steps():
      with os_errors_name(str(self.latest.directory)):  # also reports the previous background save's failure
        # The previous save's background clean-up may still be deleting the oldest step, whose emptied directory
        # the check would take for a stranger's; orbax waits for it before a save anyway.
        self.latest.wait_until_finished()
        check_own_entries(str(self.latest.directory))  # the save may delete the oldest step
        self.latest.save(step, args=self._args(state, meta), force=True)

  def save_best(self, step: int, state: Any, meta: dict[str, Any], metrics: dict[str, float]) -> None:
    """Offers the state to the keep-best manager, which keeps it if `metrics` beat the best so far."""
    if self.best is None or step in self.best.all_steps():
      return
    if self.best_metric not in metrics:
      raise ConfigError(f"checkpoint.best_metric={self.best_metric!r} is not among this task's evaluation metrics "
                        f"({', '.join(sorted(k for k in metrics if np.ndim(metrics[k]) == 0))}); pick one or use auto")
    with os_errors_name(str(self.best.directory)):
      self.best.wait_until_finished()  # as in `save`: the previous save's clean-up may still be deleting a step
      check_own_entries(str(self.best.directory))
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

  def _set_aside(self, manager: ocp.CheckpointManager, step: int, reason: str) -> None:
    """Warns that checkpoint `step` is unusable and moves it to <workdir>/corrupt/ (kept, never deleted), so
    that its step number is saved afresh by the resumed run."""
    source = os.path.join(str(manager.directory), str(step))
    logging.warning("checkpoint %s is corrupt (%s); trying the previous one", source, reason)
    if self.is_chief:
      name = f"{os.path.basename(str(manager.directory))}_{step}_{time.time():.0f}"
      target = os.path.join(self.workdir, "corrupt", name)
      try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.rename(source, target)
        logging.warning("moved it to %s", target)
      except OSError as e:  # a read-only workdir (e.g. --mode=eval): leave it where it is
        logging.warning("could not move it aside (%s)", e)
    if jax.process_count() > 1:  # every process must see the same steps before the next save
      multihost_utils.sync_global_devices(f"set_aside_{step}")
    manager.reload()

  def _read_meta(self, manager: ocp.CheckpointManager, step: int, required: Sequence[str]) -> tuple[Any, str]:
    """(meta, "") when checkpoint `step`'s meta reads and verifies, else (None, why not)."""
    try:
      meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as e:  # pylint: disable=broad-except
      return None, f"unreadable meta: {_first_line(e)}"
    if not isinstance(meta, dict):
      return None, "garbage meta"
    identity = meta.get("identity")
    if not isinstance(identity, dict) or identity.get("format") != self.identity["format"]:
      return meta, ""  # another layout's checkpoint, intact or not: `_check_identity` refuses it in one line
    if "meta_sha256" in meta and meta["meta_sha256"] != meta_sha256(meta):
      return None, "meta checksum mismatch"
    missing = [k for k in required if not isinstance(meta.get(k), dict)]
    if missing:
      return None, f"meta without {', '.join(missing)}"
    if meta.get("step", step) != step:
      return None, f"meta of step {meta.get('step')} in the directory of step {step}"
    return meta, ""

  def _restore(self, manager: ocp.CheckpointManager, abstract_state: Any, required: Sequence[str] = ()):
    for step in sorted(manager.all_steps(), reverse=True):
      meta, problem = self._read_meta(manager, step, required)
      if meta is None:
        self._set_aside(manager, step, problem)
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
        self._set_aside(manager, step, _first_line(e))
        continue
      expected = meta.get("state_sha256")
      if expected is None:
        logging.warning("checkpoint %s/%d has no checksums (written by an older vision_jax): not verified",
                        manager.directory, step)
      elif state_sha256(restored["state"]) != expected:
        self._set_aside(manager, step, "state checksum mismatch")
        continue
      return restored["state"], meta
    return None

  def restore_latest(self, abstract_state: Any, required_meta: Sequence[str] = ()
                     ) -> tuple[Any, dict[str, Any]] | None:
    """The newest intact periodic checkpoint as (state, meta), or None when there is none.

    Args:
      abstract_state: pytree of `jax.ShapeDtypeStruct` (with shardings) describing the state.
      required_meta: meta entries (dicts) without which a checkpoint counts as incomplete, e.g. ("data",).

    Raises:
      CheckpointError: the workdir holds a checkpoint of another model.
    """
    return self._restore(self.latest, abstract_state, required_meta)

  def restore_for_eval(self, abstract_state: Any) -> tuple[Any, dict[str, Any]] | None:
    """The best checkpoint if there is one, else the newest periodic one."""
    found = self._restore(self.best, abstract_state) if self.best is not None else None
    return found or self.restore_latest(abstract_state)

  def wait(self) -> None:
    """Blocks until background saves are complete."""
    with os_errors_name(str(self.latest.directory)):
      self.latest.wait_until_finished()
    if self.best is not None:
      with os_errors_name(str(self.best.directory)):
        self.best.wait_until_finished()

  def close(self) -> None:
    """Finishes pending saves and releases the managers (again: nothing). Both managers are released even when a
    pending save fails (a full disk), and that save's error is the one raised."""
    if self._closed:
      return
    self._closed = True
    close_all(self.wait, self.latest.close, *([self.best.close] if self.best is not None else []))


def _first_line(error: Exception) -> str:
  return str(error).splitlines()[0] if str(error) else type(error).__name__


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
