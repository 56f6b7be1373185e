"""Devices and hosts: the mesh, named shardings, multi-host start-up and global batches.

Data parallelism is `jax.jit` over a one-axis `Mesh` named "data": batches are sharded along it, the train
state is replicated. Under `jax.distributed` every process builds its slice of each global batch and
`jax.make_array_from_process_local_data` assembles the global array, so no process ever holds another's data.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vision_jax.errors import ConfigError

DATA_AXIS = "data"


def initialize_distributed(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1,
                           auto: bool = False) -> None:
  """Starts `jax.distributed` when asked: explicitly (coordinator flags) or by auto-detection.

  Args:
    coordinator_address: "host:port" of process 0; empty to skip (unless `auto`).
    num_processes: total processes (explicit mode).
    process_id: this process's index (explicit mode).
    auto: call `jax.distributed.initialize()` with cluster auto-detection (Cloud TPU, SLURM, ...).
  """
  if coordinator_address:
    # CPU processes need gloo for cross-process collectives; the setting does not affect GPU/TPU backends.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)
  elif auto:
    jax.distributed.initialize()


def make_mesh() -> Mesh:
  """A one-axis mesh over every device of every process (automatic sharding propagation inside jit)."""
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding that keeps a full copy on every device."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Sharding that splits the leading (batch) axis over the data axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(global_batch_size: int, what: str = "input.batch_size") -> None:
  """Raises a ConfigError unless the global batch divides evenly over all devices."""
  devices = jax.device_count()
  if global_batch_size % devices:
    raise ConfigError(f"{what}={global_batch_size} is not divisible by the {devices} devices; "
                      f"use a multiple of {devices} (e.g. --config.{what}={devices * max(1, global_batch_size // devices)})")


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Builds global batch-sharded arrays from this process's slice of a batch."""
  sharding = batch_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places a host pytree replicated on every device of the mesh (same value on every process)."""
  sharding = replicated(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_callback(np.shape(x), sharding,
                                                             lambda idx: np.asarray(x)[idx]), tree)
