"""Looking up a factory by a spec string such as "leaky_relu(negative_slope=0.2)" in a name -> factory table.

Shared by `activations.get` and `initializers.get`. The text is parsed by `vision_jax.op_spec.parse_op`
(`ast`, literal values only, never `eval`); the keyword arguments are checked against the factory's signature
so that a typo fails when the config is read, not inside a traced model.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Mapping

from vision_jax.op_spec import parse_op
from vision_jax.errors import ConfigError

_FLAX_MODULE_FIELDS = ("parent", "name")


def lookup(kind: str, table: Mapping[str, Callable[..., Any]], text: str,
           reserved: tuple[str, ...] = ()) -> tuple[Callable[..., Any], dict[str, Any]]:
  """Parses `text` and returns (factory, keyword arguments) from `table`.

  Args:
    kind: what is looked up, for messages ("activation", "initializer").
    table: name -> factory (a function or a class).
    text: "name" or "name(key=value, ...)".
    reserved: parameters the caller supplies itself (e.g. an activation's input `x`), not accepted in `text`.

  Returns:
    The factory and the parsed keyword arguments.

  Raises:
    ConfigError: unparsable text, an unknown name (with the closest known names) or keywords the factory
      does not accept.
  """
  try:
    name, kwargs = parse_op(text)
  except ConfigError:
    raise ConfigError(f"cannot parse {kind} {text!r}; write name or name(key=value, ...) with literal "
                      "values, e.g. leaky_relu(negative_slope=0.2)") from None
  if name not in table:
    close = difflib.get_close_matches(name, table, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(table))}.")
  factory = table[name]
  params = [p for p in inspect.signature(factory).parameters.values()
            if p.name not in reserved + _FLAX_MODULE_FIELDS and p.kind != p.POSITIONAL_ONLY]
  unknown = sorted(set(kwargs) - {p.name for p in params})
  if unknown:
    accepted = ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in params)
    raise ConfigError(f"{kind} {text!r}: unknown argument(s) {', '.join(unknown)}; {name} accepts: "
                      f"{accepted or 'no arguments'}")
  return factory, kwargs
