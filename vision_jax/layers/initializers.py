"""Weight initializers by name, e.g. "he_normal", "truncated_normal(stddev=0.02)", "constant(value=0.1)".

    >>> from vision_jax.layers import initializers
    >>> init = initializers.get("he_uniform")
    >>> w = init(jax.random.key(0), (3, 3, 64, 128))            # a conv kernel [kh, kw, C_in, C_out]

The variance-scaling families draw weights with variance scale / fan, where for a kernel [..., C_in, C_out] the
receptive field is the product of the leading dims, fan_in = field * C_in and fan_out = field * C_out:
  * he (He et al., 2015): scale 2 over fan_in, for ReLU layers;
  * glorot (Glorot & Bengio, 2010): scale 1 over (fan_in + fan_out) / 2;
  * lecun (LeCun et al., 1998): scale 1 over fan_in, for SELU.
"_uniform" draws from U(-limit, limit) with limit = sqrt(3 * scale / fan); "_normal" draws from a normal
truncated at 2 standard deviations whose standard deviation is corrected (divided by 0.8796) so that the
variance is still scale / fan, as JAX and Keras do (PyTorch's kaiming_normal_ does not truncate).
`truncated_normal(stddev)` is N(0, stddev^2) cut at +-2 stddev without that correction (JAX, Keras);
`orthogonal(scale)` (Saxe et al., 2013) gives a kernel reshaped to [fan_in, C_out] orthonormal columns (rows
when C_out > fan_in), times scale. Aliases: kaiming_* for he_*, xavier_* for glorot_*.

Names: he_normal, he_uniform, glorot_normal, glorot_uniform, lecun_normal, lecun_uniform, orthogonal(scale=1.0),
truncated_normal(stddev=0.01), normal(stddev=0.01), zeros, ones, constant(value).
"""

from __future__ import annotations

from typing import Callable, Union

from jax.nn import initializers as jinit

from vision_jax.errors import ConfigError
from vision_jax.layers import named

Initializer = jinit.Initializer


def zeros() -> Initializer:
  """All zeros."""
  return jinit.zeros


def ones() -> Initializer:
  """All ones."""
  return jinit.ones


def constant(value: float) -> Initializer:
  """Every value equal to `value`."""
  return jinit.constant(value)


_TABLE: dict[str, Callable[..., Initializer]] = {
    "he_normal": jinit.he_normal,
    "he_uniform": jinit.he_uniform,
    "glorot_normal": jinit.glorot_normal,
    "glorot_uniform": jinit.glorot_uniform,
    "lecun_normal": jinit.lecun_normal,
    "lecun_uniform": jinit.lecun_uniform,
    "kaiming_normal": jinit.he_normal,
    "kaiming_uniform": jinit.he_uniform,
    "xavier_normal": jinit.glorot_normal,
    "xavier_uniform": jinit.glorot_uniform,
    "orthogonal": jinit.orthogonal,
    "truncated_normal": jinit.truncated_normal,
    "normal": jinit.normal,
    "zeros": zeros,
    "ones": ones,
    "constant": constant,
}


def names() -> list[str]:
  """The sorted initializer names `get` accepts."""
  return sorted(_TABLE)


def get(spec: Union[str, Initializer]) -> Initializer:
  """Returns the initializer named by `spec`; a callable passes through.

  Args:
    spec: "name" or "name(key=value, ...)" (see the module docstring), or an initializer.

  Returns:
    A function (key, shape, dtype=float32) -> array, as `flax.linen.Conv(kernel_init=...)` takes.

  Raises:
    ConfigError: unknown name or arguments.
  """
  if callable(spec):
    return spec
  factory, kwargs = named.lookup("initializer", _TABLE, spec)
  try:
    return factory(**kwargs)
  except TypeError as e:  # a required argument is missing, e.g. "constant" without a value
    raise ConfigError(f"initializer {spec!r}: {e}; write e.g. constant(value=0.1)") from None
