"""The one exception type for mistakes a user can fix.

`vision_jax.main` turns a `UserError` into a single line on stderr and a non-zero exit status, with no
traceback. Library code raises it (or a subclass) for bad input: unknown names, bad config values, wrong
image shapes, invalid boxes, mismatched checkpoints. The message names the problem and the fix.
`os_error_line` does the same for OS errors of the user's environment (permissions, full or read-only disks);
`os_errors_name` gives such an error raised without a path (a full disk met by a buffered write) the place it
happened in; `close_all` closes every file of a run even when closing one of them fails.
"""

import contextlib
import errno
import os
import re
from typing import Callable


class UserError(Exception):
  """A problem in the user's input, with a one-line message that says how to fix it."""


class ConfigError(UserError, ValueError):
  """A bad config file, key or value."""


class DataError(UserError):
  """A dataset that is unknown, unprepared, empty or has the wrong shape."""


class CheckpointError(UserError):
  """A checkpoint that belongs to another model or cannot be restored."""


class TrainingDivergedError(UserError):
  """The loss became NaN or infinite."""


# OSError numbers that a user's environment causes and can fix: permissions, read-only or full disks, bad paths.
_FIXES = {
    errno.EACCES: "make it writable (or readable), or use another path",
    errno.EPERM: "make it writable (or readable), or use another path",
    errno.EROFS: "the file system is read-only; use a writable --workdir",
    errno.ENOSPC: "the disk is full; free space and rerun the same command (the previous checkpoint is kept)",
    errno.EDQUOT: "the disk quota is used up; free space and rerun the same command (the previous checkpoint is kept)",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a directory was expected there; check the path",
    errno.EISDIR: "a file was expected there; check the path",
}


@contextlib.contextmanager
def os_errors_name(path: str):
  """Re-raises an OSError that carries an errno but no path (a buffered file's flush or close, orbax's background
  writers) as the same error at `path`, so that its `error:` line says where the problem is; errors that name their
  own path pass unchanged, so an inner, more precise `os_errors_name` wins over an outer one.

  Args:
    path: the file or directory that the wrapped code writes in (e.g. the run's workdir).
  """
  try:
    yield
  except OSError as error:
    if error.filename is None and error.errno is not None:
      raise OSError(error.errno, error.strerror or os.strerror(error.errno), path) from error
    raise


def close_all(*closers: Callable[[], None]) -> None:
  """Calls every closer in turn (e.g. a run's progress line, checkpointer and metric writer), each even when one
  before it failed (a full disk), so that no file stays open; then raises the first failure.

  Args:
    closers: functions of no argument, called in this order.
  """
  first = None
  for close in closers:
    try:
      close()
    except BaseException as error:  # pylint: disable=broad-except
      first = first or error
  if first is not None:
    raise first


def os_error_line(error: BaseException) -> str | None:
  """One line naming the path, the problem and the fix for an OSError a user can fix (see `_FIXES`); else None.

  Also recognises such errors that libraries re-raise as another type with the OS message in their text (e.g.
  "No space left on device" from the checkpoint writer).
  """
  if isinstance(error, OSError) and error.errno in _FIXES:
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{error.strerror or os.strerror(error.errno)}; {_FIXES[error.errno]}"
  text = str(error)
  for number in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
    if os.strerror(number) in text:
      path = re.search(r'"(/[^"]+)"', text)
      return f"{os.strerror(number)}{f' writing {path.group(1)}' if path else ''}; {_FIXES[number]}"
  return None
