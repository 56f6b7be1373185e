"""Helpers for tests that drive the training loop's parts in-process (a config loaded by path with overrides,
the train step compiled as `vision_jax.train` compiles it, the training batches it feeds), and the environment of
`python -m vision_jax.main` subprocesses that load the test-only configs."""

from __future__ import annotations

import os
from typing import Any, Iterator

import jax
import ml_collections
import numpy as np

from tests.training import harness
from vision_jax import config_loading
from vision_jax.train_lib import setup
from vision_jax.train_lib.setup import Setup

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_config(spec: str, data_dir: str = "", **overrides: Any) -> ml_collections.ConfigDict:
  """The config of `spec` ("path/relative/to/repo.py[:args]") with `--config.<key>=<value>` overrides applied
  (keys with "__" for ".", e.g. input__batch_size=8) and `dataset.data_dir` set."""
  config = config_loading.load_config(os.path.join(REPO, spec))
  for key, value in overrides.items():
    config_loading.apply_override(config, key.replace("__", "."), str(value))
  config.dataset.data_dir = data_dir
  return config


def subprocess_env(data_dir: str) -> dict[str, str]:
  """`harness.env` with the repo root on PYTHONPATH, so that tests/tasks/configs/*.py can import the toy tasks."""
  env = harness.env(data_dir)
  env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH", "")) if p)
  return env


def override_flags(**overrides: Any) -> list[str]:
  """The command-line form of `load_config`'s overrides."""
  return [f"--config.{key.replace('__', '.')}={value}" for key, value in overrides.items()]


def compile_train_step(s: Setup):
  """The loop's train step (`setup.compile_train_step`)."""
  return setup.compile_train_step(s)


def train_batches(s: Setup) -> Iterator[dict[str, jax.Array]]:
  """The loop's global training batches, from the first step on."""
  return setup.train_batches(s)[1]


def host_copy(tree: Any) -> Any:
  """A NumPy copy of a pytree (taken before a donating step consumes the arrays)."""
  return jax.tree.map(lambda x: jax.device_get(x).copy(), tree)


def assert_trees_equal(a: Any, b: Any) -> None:
  """Same structure and bit-identical leaves."""
  paths_a = jax.tree_util.tree_flatten_with_path(a)[0]
  paths_b = jax.tree_util.tree_flatten_with_path(b)[0]
  assert [jax.tree_util.keystr(p) for p, _ in paths_a] == [jax.tree_util.keystr(p) for p, _ in paths_b]
  for (path, x), (_, y) in zip(paths_a, paths_b):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and np.array_equal(x, y), f"{jax.tree_util.keystr(path)} differs"
