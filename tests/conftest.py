"""Shared test setup: CPU only, a per-session TFDS data dir with the embedded MNIST prepared once."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
  """A TFDS data directory holding the prepared embedded MNIST (prepared once per test session/worker)."""
  from vision_jax.data import embedded_mnist  # pylint: disable=import-outside-toplevel
  path = str(tmp_path_factory.mktemp("tfds"))
  embedded_mnist.prepare(path)
  return path
