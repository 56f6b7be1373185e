"""Search spaces: `--space='key=kind(args)'` dimensions, their grid and their seeded random draws.

A dimension is a dotted config key and a distribution written like a call:

  optimizer.learning_rate=loguniform(1e-4, 1e-2)    log-uniform between two positive floats
  loss.label_smoothing=uniform(0.0, 0.2)            uniform between two floats
  model.kwargs.width=randint(16, 64)                uniform integer, both ends included
  input.batch_size=choice(64, 128, 256)             one of the listed literals (bare words are strings:
  optimizer.name=choice(adam, sgd)                  choice(adam, sgd) == choice('adam', 'sgd'))
  input.batch_size=[64, 128]                        a bare list or tuple is a choice

The text is parsed with `ast` (call name, literal arguments); nothing is evaluated.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import math
import re
from typing import Any, Sequence

import numpy as np

from vision_jax.errors import ConfigError

KINDS = ("choice", "uniform", "loguniform", "randint")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SYNTAX = ("write --space='a.b=KIND(ARGS)' with KIND one of choice(v1, v2, ...), uniform(low, high), "
           "loguniform(low, high), randint(low, high)")


@dataclasses.dataclass(frozen=True)
class Dimension:
  """One searched config value.

  Attributes:
    key: dotted config key, e.g. "optimizer.learning_rate".
    kind: one of `KINDS`.
    args: the options of a choice, else (low, high).
  """

  key: str
  kind: str
  args: tuple[Any, ...]

  def sample(self, rng: np.random.Generator) -> Any:
    """One random value (log-uniform draws are uniform in log space)."""
    if self.kind == "choice":
      return self.args[int(rng.integers(len(self.args)))]
    low, high = self.args
    if self.kind == "randint":
      return int(rng.integers(low, high + 1))
    if self.kind == "loguniform":
      return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return float(rng.uniform(low, high))

  def grid(self, points: int) -> list[Any]:
    """Grid values: every option of a choice, else `points` evenly spaced values from low to high (in log
    space for loguniform; distinct integers for randint)."""
    if self.kind == "choice":
      return list(self.args)
    low, high = self.args
    if self.kind == "randint":
      return sorted({int(round(v)) for v in np.linspace(low, high, points)})
    if points == 1:
      return [float(math.sqrt(low * high)) if self.kind == "loguniform" else (low + high) / 2]
    values = np.geomspace(low, high, points) if self.kind == "loguniform" else np.linspace(low, high, points)
    return [float(v) for v in values]

  def describe(self) -> str:
    """The dimension as it is written on the command line."""
    return f"{self.key}={self.kind}({', '.join(repr(a) for a in self.args)})"


def _literal(node: ast.expr, text: str) -> Any:
  if isinstance(node, ast.Name):  # choice(adam, sgd): bare words are strings
    return node.id
  try:
    return ast.literal_eval(node)
  except ValueError:
    raise ConfigError(f"--space={text!r}: {ast.unparse(node)!r} is not a literal; {_SYNTAX}") from None


def parse_dimension(text: str) -> Dimension:
  """Parses one `key=kind(args)` (or `key=[v1, v2]`) dimension.

  Raises:
    ConfigError: bad syntax, unknown kind, or arguments that do not fit the kind.
  """
  key, sep, expr = text.partition("=")
  key = key.strip()
  if not sep or not _KEY.match(key):
    raise ConfigError(f"--space={text!r} needs a dotted config key and a distribution; {_SYNTAX}")
  try:
    node = ast.parse(expr.strip(), mode="eval").body
  except SyntaxError:
    raise ConfigError(f"--space={text!r}: cannot parse {expr.strip()!r}; {_SYNTAX}") from None
  if isinstance(node, (ast.List, ast.Tuple)):
    kind, arg_nodes = "choice", node.elts
  elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
    kind, arg_nodes = node.func.id, node.args
  else:
    raise ConfigError(f"--space={text!r}: {expr.strip()!r} is not a distribution; {_SYNTAX}")
  if kind not in KINDS:
    raise ConfigError(f"--space={text!r}: unknown distribution {kind!r}; {_SYNTAX}")
  args = tuple(_literal(a, text) for a in arg_nodes)
  return Dimension(key, kind, _check_args(text, kind, args))


def _check_args(text: str, kind: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
  if kind == "choice":
    if not args:
      raise ConfigError(f"--space={text!r}: choice() needs at least one value")
    return args
  numeric = all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
  if len(args) != 2 or not numeric:
    raise ConfigError(f"--space={text!r}: {kind}() takes two numbers (low, high)")
  low, high = args
  if kind == "randint":
    if not all(isinstance(a, int) for a in args) or low > high:
      raise ConfigError(f"--space={text!r}: randint(low, high) needs integers with low <= high")
    return args
  if not low < high:
    raise ConfigError(f"--space={text!r}: {kind}(low, high) needs low < high")
  if kind == "loguniform" and low <= 0:
    raise ConfigError(f"--space={text!r}: loguniform(low, high) needs 0 < low")
  return float(low), float(high)


def parse_space(texts: Sequence[str]) -> list[Dimension]:
  """Parses every `--space` flag; raises ConfigError for none or a key given twice."""
  if not texts:
    raise ConfigError(f"a sweep needs at least one --space; {_SYNTAX}")
  space = [parse_dimension(t) for t in texts]
  keys = [d.key for d in space]
  repeated = sorted({k for k in keys if keys.count(k) > 1})
  if repeated:
    raise ConfigError(f"--space gives {', '.join(repeated)} more than once; merge them into one choice(...)")
  return space


def grid_points(space: Sequence[Dimension], points: int = 3) -> list[dict[str, Any]]:
  """Every combination of the dimensions' grid values, the last dimension varying fastest."""
  if points < 1:
    raise ConfigError(f"--grid_points={points} must be >= 1")
  keys = [d.key for d in space]
  return [dict(zip(keys, values)) for values in itertools.product(*(d.grid(points) for d in space))]


def random_point(space: Sequence[Dimension], seed: int, index: int) -> dict[str, Any]:
  """Trial `index`'s random draw: a function of (seed, index) alone, so a rerun or a longer sweep draws the
  same values for the trials it already had."""
  rng = np.random.default_rng([seed, index])
  return {d.key: d.sample(rng) for d in space}


def override_text(value: Any) -> str:
  """A drawn value as the text of a `--config.key=text` override."""
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, str):
    return value
  return repr(value)
