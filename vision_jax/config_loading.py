"""Loading experiment configs from files and applying `--config.a.b=value` overrides.

A config file is a Python module defining `get_config(arg=None)`; it is imported from its path (like any
module, never `eval`-ed) and called with the text after ":" in `--config=path.py:arg`. Overrides are typed by
the value they replace; unknown keys and ill-typed values are `ConfigError`s naming the fix.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from typing import Any, Callable, Sequence

import ml_collections
from absl import flags

from vision_jax.errors import ConfigError, UserError

OVERRIDE_PREFIX = "--config."


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def typed_value(key: str, text: str, default: Any) -> Any:
  """Converts `text` to the type of `default` (bool, int, float or str); raises ConfigError if it can't."""
  kind = type(default)
  try:
    if kind is bool:
      if text.lower() in _TRUE:
        return True
      if text.lower() in _FALSE:
        return False
      raise ValueError
    if kind is int:
      return int(text)
    if kind is float:
      return float(text)
    return text
  except ValueError:
    raise ConfigError(f"{key}={text!r} is not a valid {kind.__name__} "
                      f"(default {default!r}); pass e.g. {key}={default!r}") from None


def packaged_config_path(name: str) -> str:
  """Path of a config file shipped in the top-level configs/ folder (located, never imported as library code)."""
  configs = importlib.util.find_spec("vision_jax.configs")
  return os.path.join(list(configs.submodule_search_locations)[0], name)


def split_path_and_arg(spec: str) -> tuple[str, str | None]:
  """"configs/x.py:a=1,smoke" -> ("configs/x.py", "a=1,smoke"); no ":" -> (spec, None)."""
  path, sep, arg = spec.partition(":")
  return path, (arg if sep else None)


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Imports the config file of `spec` ("path.py[:arg]") and returns `get_config(arg)`.

  Raises:
    ConfigError: missing file, no `get_config`, or a bad argument (raised by `get_config` itself).
  """
  path, arg = split_path_and_arg(spec)
  if not os.path.isfile(path):
    raise ConfigError(f"config file {path!r} not found; pass --config=configs/<experiment>.py "
                      f"(relative to {os.getcwd()}) or an absolute path")
  name = "vision_jax_config_" + os.path.splitext(os.path.basename(path))[0]
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  sys.modules[name] = module
  module_spec.loader.exec_module(module)  # imports the file as a module (no eval of text)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {path!r} defines no get_config(arg=None); add one")
  config = module.get_config(arg) if arg is not None else module.get_config()
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"get_config() in {path!r} must return an ml_collections.ConfigDict")
  return config


def _convert(dotted: str, text: str, current: Any) -> Any:
  if isinstance(current, (bool, int, float, str)):
    if isinstance(current, float):  # "1e-3" and "3" both work for float fields
      current = float(current)
    return typed_value(f"{OVERRIDE_PREFIX}{dotted}", text, current)
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    raise ConfigError(f"{OVERRIDE_PREFIX}{dotted}={text!r} is not a literal value of type "
                      f"{type(current).__name__}; write e.g. {OVERRIDE_PREFIX}{dotted}={current!r}") from None
  if current is not None and not isinstance(value, type(current)):
    raise ConfigError(f"{OVERRIDE_PREFIX}{dotted}={text!r} has type {type(value).__name__}, expected "
                      f"{type(current).__name__} (current value {current!r})")
  return value


def apply_override(config: ml_collections.ConfigDict, dotted: str, text: str) -> None:
  """Sets `config.<dotted>` from text, typed by its current value.

  Raises:
    ConfigError: the key does not exist (with the valid keys at that level) or the value has the wrong type.
  """
  node = config
  parts = dotted.split(".")
  for i, part in enumerate(parts):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      where = ".".join(parts[:i]) or "the config"
      keys = ", ".join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) else "none"
      raise ConfigError(f"unknown config key {dotted!r} in {OVERRIDE_PREFIX}{dotted}; keys of {where}: {keys}")
    if i < len(parts) - 1:
      node = node[part]
  current = node[parts[-1]]
  if isinstance(current, ml_collections.ConfigDict):
    raise ConfigError(f"{OVERRIDE_PREFIX}{dotted} is a section, not a value; set one of its keys: "
                      f"{', '.join(sorted(current.keys()))}")
  node[parts[-1]] = _convert(dotted, text, current)


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
  """Separates `--config.a.b=v` arguments from the rest of argv.

  Returns:
    (other arguments, [(dotted key, value text), ...]) in command-line order.
  """
  rest, overrides = [], []
  for arg in argv:
    if arg.startswith(OVERRIDE_PREFIX):
      key, sep, value = arg[len(OVERRIDE_PREFIX):].partition("=")
      if not sep:
        raise ConfigError(f"override {arg!r} needs a value: {arg}=<value>")
      overrides.append((key, value))
    else:
      rest.append(arg)
  return rest, overrides


def flags_parser(overrides: list[tuple[str, str]]) -> Callable[[list[str]], list[str]]:
  """An absl `flags_parser` that collects `--config.a.b=v` arguments into `overrides` and parses the rest.

  A bad flag or override is one `error:` line on stderr and exit status 2.
  """

  def parse(argv: list[str]) -> list[str]:
    try:
      argv, found = split_overrides(argv)
      overrides.extend(found)
      return flags.FLAGS(argv)
    except flags.Error as e:
      sys.stderr.write(f"error: {str(e).splitlines()[0].strip(chr(34)) if str(e) else e!r}\n")
      sys.exit(2)
    except UserError as e:
      sys.stderr.write(f"error: {e}\n")
      sys.exit(2)

  return parse
