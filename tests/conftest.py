"""Shared test setup: CPU only, a per-session TFDS data dir with the embedded MNIST prepared once, and cheaper
XLA compiles, since on a 2-core machine compiling is most of the suite's time: LLVM's optimisation level 1 instead
of 2 (the test shapes are tiny, so slower code costs little) and one persistent compilation cache shared by the
run's workers and the `python -m vision_jax.main` subprocesses they start (many tests compile the same train steps).
Level 0 is not used: with it XLA's CPU code for some models is wrong (NaN losses in the U-Net and little-VGG tests,
a ResNet-18 output off by 0.03), which the suite catches."""

import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
_OWNED_CACHE: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
  """In the controlling process, set the compile options (inherited by the workers and their subprocesses).

  An `--xla_backend_optimization_level` the caller put in `XLA_FLAGS` is kept (set it to 2 to test fully optimised
  code). The cache is left alone when the caller set `JAX_COMPILATION_CACHE_DIR` or `VISION_JAX_TEST_COMPILE_CACHE=0`;
  its size bound turns on JAX's file lock, so processes compiling one program at once never read a half-written entry.
  """
  if hasattr(config, "workerinput"):
    return
  xla_flags = os.environ.get("XLA_FLAGS", "")
  if "--xla_backend_optimization_level" not in xla_flags:
    os.environ["XLA_FLAGS"] = f"{xla_flags} --xla_backend_optimization_level=1".strip()
  if _CACHE_ENV in os.environ:
    return
  if os.environ.get("VISION_JAX_TEST_COMPILE_CACHE", "1") == "0":
    return
  path = tempfile.mkdtemp(prefix="vision_jax_test_xla_cache_")
  _OWNED_CACHE.append(path)
  os.environ[_CACHE_ENV] = path
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
  os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(16 << 30))


def pytest_unconfigure(config: pytest.Config) -> None:
  """Removes the cache this process made."""
  del config
  while _OWNED_CACHE:
    shutil.rmtree(_OWNED_CACHE.pop(), ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
  """A TFDS data directory holding the prepared embedded MNIST (prepared once per test session/worker)."""
  from vision_jax.data import embedded_mnist  # pylint: disable=import-outside-toplevel
  path = str(tmp_path_factory.mktemp("tfds"))
  embedded_mnist.prepare(path)
  return path
