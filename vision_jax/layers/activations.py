"""Activation functions by name, as plain functions and (PReLU) a Flax module.

    >>> from vision_jax.layers import activations
    >>> act = activations.get("leaky_relu(negative_slope=0.2)")   # a function [...] -> [...]
    >>> act(jnp.array([-1.0, 2.0]))                                # doctest: +SKIP
    Array([-0.2,  2. ], dtype=float32)

Every entry of `get` is a callable `x -> y` usable wherever a model takes `act`. "prelu" is a module with a
learned slope: the callable `get("prelu")` creates one `PReLU` (auto-named `PReLU_0`, `PReLU_1`, ...) each time
it is called inside a Flax compact method, so every layer learns its own slopes. "crelu" doubles the channel
axis; the next Flax layer infers its input width, so it is built for the doubled width.

Names: relu, leaky_relu(negative_slope=0.01), prelu(init_slope=0.25, channel_shared=False), elu(alpha=1.0),
selu, gelu(approximate=False), swish(beta=1.0), silu, relu6, crelu(axis=-1), identity, sigmoid, tanh.
`guided_relu` (a ReLU whose backward pass also zeroes negative gradients, for guided backpropagation) is not a
name to train with; pass the function itself as `act`.
"""

from __future__ import annotations

import functools
from typing import Callable, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers import named

Activation = Callable[[jax.Array], jax.Array]


def identity(x: jax.Array) -> jax.Array:
  """Returns `x` unchanged (a linear layer)."""
  return x


def gelu(x: jax.Array, approximate: bool = False) -> jax.Array:
  """GELU x * Phi(x) (Hendrycks & Gimpel, 2016), exact by default; `approximate=True` uses the tanh form
  0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).

  Note `jax.nn.gelu` defaults to the tanh form; PyTorch and Keras default to the exact one, as here.
  """
  return jax.nn.gelu(x, approximate=approximate)


def swish(x: jax.Array, beta: float = 1.0) -> jax.Array:
  """Swish x * sigmoid(beta * x) (Ramachandran et al., "Searching for Activation Functions", 2017); beta 1 is
  SiLU (Elfwing et al., 2017)."""
  return x * jax.nn.sigmoid(beta * x)


def crelu(x: jax.Array, axis: int = -1) -> jax.Array:
  """Concatenated ReLU [relu(x), relu(-x)] along `axis` (Shang et al., "Understanding and Improving
  Convolutional Neural Networks via Concatenated Rectified Linear Units", 2016).

  Args:
    x: any array, e.g. [N, H, W, C].
    axis: the channel axis to double.

  Returns:
    An array whose `axis` is twice as long, e.g. [N, H, W, 2C].
  """
  return jnp.concatenate([jax.nn.relu(x), jax.nn.relu(-x)], axis=axis)


@jax.custom_vjp
def guided_relu(x: jax.Array) -> jax.Array:
  """ReLU max(0, x) whose backward pass passes only positive gradients at positive inputs, g * [x > 0] * [g > 0]
  (guided backpropagation, Springenberg et al., "Striving for Simplicity", 2015). Build a model with
  `act=guided_relu` (`models.overrides.build(name, activation=guided_relu)`) to take guided gradients."""
  return jax.nn.relu(x)


def _guided_relu_fwd(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  return jax.nn.relu(x), x


def _guided_relu_bwd(x: jax.Array, g: jax.Array) -> tuple[jax.Array]:
  return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_relu_fwd, _guided_relu_bwd)


class PReLU(nn.Module):
  """Parametric ReLU max(0, x) + a * min(0, x) with a learned slope a (He et al., "Delving Deep into
  Rectifiers", 2015).

  Attributes:
    init_slope: initial value of every slope (0.25 in the paper).
    channel_shared: one slope for the whole layer instead of one per channel (the last axis).
  """

  init_slope: float = 0.25
  channel_shared: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [..., C] to [..., C]; the parameter `slope` has shape [C] (or [] when channel_shared)."""
    shape = () if self.channel_shared else (x.shape[-1],)
    slope = self.param("slope", nn.initializers.constant(self.init_slope), shape, jnp.float32)
    return jnp.where(x >= 0, x, slope.astype(x.dtype) * x)


_TABLE: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,
    "prelu": PReLU,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "gelu": gelu,
    "swish": swish,
    "silu": jax.nn.silu,
    "relu6": jax.nn.relu6,
    "crelu": crelu,
    "identity": identity,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
}


def names() -> list[str]:
  """The sorted activation names `get` accepts."""
  return sorted(_TABLE)


def _module_activation(cls: type[nn.Module], kwargs: dict) -> Activation:
  def act(x: jax.Array) -> jax.Array:
    return cls(**kwargs)(x)  # a new child of the module whose compact method is running

  return act


def get(spec: Union[str, Activation]) -> Activation:
  """Returns the activation named by `spec`, e.g. "relu", "elu(alpha=0.5)", "prelu"; a callable passes through.

  Args:
    spec: "name" or "name(key=value, ...)" (see the module docstring), or a callable.

  Returns:
    A callable x -> y. Names without arguments return the function itself (`get("relu") is jax.nn.relu`).

  Raises:
    ConfigError: unknown name or arguments.
  """
  if callable(spec):
    return spec
  factory, kwargs = named.lookup("activation", _TABLE, spec, reserved=("x",))
  if isinstance(factory, type) and issubclass(factory, nn.Module):
    return _module_activation(factory, kwargs)
  return functools.partial(factory, **kwargs) if kwargs else factory
