"""The one exception type for mistakes a user can fix.

`vision_jax.main` turns a `UserError` into a single line on stderr and a non-zero exit status, with no
traceback. Library code raises it (or a subclass) for bad input: unknown names, bad config values, wrong
image shapes, invalid boxes, mismatched checkpoints. The message names the problem and the fix.
"""


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
