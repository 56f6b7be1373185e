"""The check every malformed-input test makes: a `DataError` whose message is one line."""

import contextlib

import pytest

from vision_jax.errors import DataError


@contextlib.contextmanager
def one_line_error(match: str, error: type = DataError):
  """Expects `error` matching the regex `match` with a one-line message; yields pytest's ExceptionInfo."""
  with pytest.raises(error, match=match) as raised:
    yield raised
  assert "\n" not in str(raised.value)
