"""Name -> constructor registry for every model in the library.

Families register their constructors at import time with `@register("name")`; `get(name, **kwargs)` builds
the Flax module. Depth variants are registered as `functools.partial` presets of one generic network.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

import flax.linen as nn

from vision_jax.errors import UserError

ModelFactory = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelFactory] = {}


def register(name: str) -> Callable[[ModelFactory], ModelFactory]:
  """Decorator that registers a model constructor (a Module class or a function) under `name`."""

  def decorator(factory: ModelFactory) -> ModelFactory:
    register_factory(name, factory)
    return factory

  return decorator


def register_factory(name: str, factory: ModelFactory) -> None:
  """Registers `factory` (e.g. a `functools.partial` preset) under `name`."""
  if name in _REGISTRY:
    raise ValueError(f"model name {name!r} is registered twice")
  _REGISTRY[name] = factory


def names() -> list[str]:
  """Returns the sorted list of registered model names."""
  return sorted(_REGISTRY)


def get(name: str, **kwargs: Any) -> nn.Module:
  """Builds the registered model `name` with constructor keyword arguments.

  Args:
    name: a registered model name, e.g. "lenet5".
    **kwargs: passed to the constructor (e.g. `num_classes=10`).

  Returns:
    An unbound Flax Linen module.

  Raises:
    UserError: for an unknown name (with the closest known names) or an unknown keyword.
  """
  if name not in _REGISTRY:
    close = difflib.get_close_matches(name, _REGISTRY, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UserError(f"unknown model {name!r}.{hint} Known models: {', '.join(names())}.")
  factory = _REGISTRY[name]
  try:
    return factory(**kwargs)
  except TypeError as e:
    raise UserError(f"model {name!r} does not accept these arguments {sorted(kwargs)}: {e}") from None
