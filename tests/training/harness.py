"""Helpers for tests that run `python -m vision_jax.main` in subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np

TINY = ["--config.log_every_steps=1", "--config.input.eval_batch_size=512"]


def env(data_dir: str, devices: int = 1) -> dict[str, str]:
  out = dict(os.environ)
  xla_flags = out.get("XLA_FLAGS", "")  # keeps the suite's compile options (tests/conftest.py)
  out.update(JAX_PLATFORMS="cpu", TFDS_DATA_DIR=data_dir, PYTHONUNBUFFERED="1",
             XLA_FLAGS=f"{xla_flags} --xla_force_host_platform_device_count={devices}".strip())
  return out


def main_cmd(*args: str) -> list[str]:
  return [sys.executable, "-m", "vision_jax.main", *args]


def run_main(data_dir: str, *args: str, devices: int = 1, timeout: int = 240) -> subprocess.CompletedProcess:
  return subprocess.run(main_cmd(*args), env=env(data_dir, devices), capture_output=True, text=True,
                        timeout=timeout)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def final_params(workdir: str) -> dict:
  from vision_jax.train_lib.checkpoint import load_state_arrays  # pylint: disable=import-outside-toplevel
  return load_state_arrays(workdir)


def max_relative_difference(a, b) -> float:
  import jax  # pylint: disable=import-outside-toplevel
  diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-12)), a, b)
  return max(jax.tree.leaves(diffs))
