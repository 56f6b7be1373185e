"""Parsing of op pipelines written as text: "name(key=value, ...)|name|...".

Values are Python literals read with `ast.literal_eval` (never `eval`): numbers, strings, tuples, lists,
booleans and None.
"""

from __future__ import annotations

import ast
from typing import Any

from vision_jax.errors import ConfigError


def parse_op(text: str) -> tuple[str, dict[str, Any]]:
  """Parses "name" or "name(k=v, ...)" into (name, kwargs).

  Raises:
    ConfigError: the text is not a name with keyword arguments of literal values.
  """
  text = text.strip()
  try:
    node = ast.parse(text, mode="eval").body
  except SyntaxError:
    raise ConfigError(f"cannot parse op {text!r}; write name or name(key=value, ...)") from None
  if isinstance(node, ast.Name):
    return node.id, {}
  if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or node.args:
    raise ConfigError(f"cannot parse op {text!r}; write name or name(key=value, ...) with keyword arguments")
  kwargs = {}
  for keyword in node.keywords:
    try:
      kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    except ValueError:
      raise ConfigError(f"op {text!r}: the value of {keyword.arg!r} must be a literal (number, string, "
                        "tuple, list, bool)") from None
  return node.func.id, kwargs


def parse_pipeline(text: str) -> list[tuple[str, dict[str, Any]]]:
  """Parses "op1|op2(...)|..." into a list of (name, kwargs); an empty string is an empty pipeline."""
  return [parse_op(part) for part in text.split("|") if part.strip()]
