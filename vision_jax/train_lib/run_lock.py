"""One training run per workdir at a time: an advisory lock (`fcntl.flock`) on `<workdir>/.run.lock`, held by
process 0 for the whole run. The kernel drops it when the process dies, so a killed run never leaves it stuck."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Iterator

from vision_jax.errors import ConfigError

LOCK_NAME = ".run.lock"


@contextlib.contextmanager
def held(workdir: str, enabled: bool = True) -> Iterator[None]:
  """Holds the workdir's run lock for the `with` block.

  Raises:
    ConfigError: another live process holds it (one line naming its pid and the fix).
  """
  if not enabled:
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_NAME)
  with open(path, "a+") as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock.seek(0)
      owner = lock.read().strip() or "?"
      raise ConfigError(f"another run (pid {owner}) is using {workdir}; wait for it to finish, stop it, or use "
                        "another --workdir") from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def holder(workdir: str) -> str | None:
  """The pid (as written) of the live process holding the workdir's run lock, or None when it is free."""
  path = os.path.join(workdir, LOCK_NAME)
  if not os.path.exists(path):
    return None
  with open(path, "a+") as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock.seek(0)
      return lock.read().strip() or "?"
    fcntl.flock(lock, fcntl.LOCK_UN)
  return None


def wait_until_free(workdir: str, timeout: float, poll: float = 0.2) -> str | None:
  """Waits up to `timeout` seconds for the workdir's run lock to be free; returns the holder's pid if it is not."""
  deadline = time.time() + timeout
  while True:
    owner = holder(workdir)
    if owner is None or time.time() >= deadline:
      return owner
    time.sleep(poll)
