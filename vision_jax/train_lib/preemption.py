"""Stop requests between steps: SIGTERM (schedulers, preemption) and Ctrl-C (SIGINT) set a flag that the loop
reads after each step, so it can save a checkpoint, say so in one line and exit. A second Ctrl-C aborts at once
(`KeyboardInterrupt`, which the command line turns into one line and exit status 130).
"""

from __future__ import annotations

import signal


class StopRequests:
  """Context manager turning SIGTERM and the first SIGINT into `requested` (with the signal's name in `signal`)."""

  def __init__(self):
    self.requested = False
    self.signal = ""
    self._previous: dict[int, object] = {}

  def __enter__(self) -> "StopRequests":
    for signum in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[signum] = signal.signal(signum, self._handle)
      except ValueError:  # not the main thread: leave signals alone
        pass
    return self

  def _handle(self, signum, frame) -> None:
    del frame
    if self.requested and signum == signal.SIGINT:  # the second Ctrl-C: stop now
      raise KeyboardInterrupt
    self.requested = True
    self.signal = signal.Signals(signum).name

  def __exit__(self, *exc) -> None:
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
