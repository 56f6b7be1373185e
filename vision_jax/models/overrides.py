"""Training-craft switches for any registered model: activation, initializers, batch norm and dropout.

    >>> from vision_jax.models import overrides
    >>> model = overrides.build("simple_cnn", num_classes=10, activation="prelu", kernel_init="he_uniform",
    ...                         bias_init="constant(value=0.1)", batch_norm=True, dropout=0.3)

In a config: `model.activation`, `model.kernel_init`, `model.bias_init`, `model.batch_norm` ("", "on", "off")
and `model.dropout` (< 0: the model's own rates); `from_config` reads them. Left at their defaults, `build`
returns exactly `registry.get(name, **kwargs)`, so no default model changes.

How each switch reaches the model, and why:
  * activation: a constructor field `act` of every family (default: the family's own, ReLU, ReLU6, swish or
    tanh), passed down to its blocks. Activations are plain function calls that no Flax hook can see, PReLU has
    to create its slopes inside the block that uses it, and CReLU changes widths, so the field is the honest
    route. It replaces every hidden nonlinearity the family has; linear projections (residual shortcuts,
    MobileNetV2/EfficientNet projections) stay linear and squeeze-excite gates stay sigmoids.
  * kernel_init, bias_init, batch_norm=off, dropout: `Overrides`, a wrapper that runs the model under
    `flax.linen.intercept_methods`. An interceptor reaches every `nn.Conv`, `nn.Dense`, `nn.BatchNorm` and
    `nn.Dropout` of any model, including layers a family builds inline, without threading `kernel_init`
    through dozens of call sites; the wrapper shares the model's scope (`nn.share_scope`), so the variables
    keep their names and tree (checkpoints and weight import are unchanged).
      - kernel_init / bias_init: during `init`, every layer with a `kernel_init` (Conv, Dense, ...) is called
        with its `kernel_init` and `bias_init` attributes set to the chosen initializers (and restored after
        the call), so it draws exactly what a layer constructed with them would; batch-norm offsets keep
        their zeros. (Calling a re-configured clone instead would pass the layer through every interceptor
        twice, so `models.summary` would list it twice; redrawing after the call cannot change its output.)
      - batch_norm="off": every `nn.BatchNorm` returns its input (no scale, offset or statistics). Convs that
        were built for batch norm keep having no bias.
      - dropout=r: every `nn.Dropout` runs at rate r, its `rate` attribute set the same way (EfficientNet's
        stochastic depth is not an `nn.Dropout` and keeps its rate). Models with no dropout layer (lenet,
        resnet, densenet, xception, keras_vgg16/19) raise a ConfigError for r > 0.
  * batch_norm="on": the `batch_norm` field of the families that have one (vgg, simple_cnn, alexnet, nin);
    families built from conv-BN blocks (resnet, inception, xception, mobilenet, efficientnet, densenet)
    already have it; lenet has none and raises a ConfigError.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any, Callable, Iterator, Mapping, Optional, Union

import flax.linen as nn

from vision_jax.errors import ConfigError
from vision_jax.layers import activations, initializers
from vision_jax.models import registry


class Overrides(nn.Module):
  """Runs `model` with its layers' initializers, batch norm and dropout overridden; same variables tree.

  Attributes:
    model: any unbound Flax module.
    kernel_init: redraws every kernel at `init`, or None.
    bias_init: redraws the bias of every layer that has a kernel at `init`, or None.
    strip_batch_norm: every `nn.BatchNorm` returns its input.
    require_batch_norm: `init` fails unless the model has batch norm (batch_norm="on" without a field).
    dropout: the rate of every `nn.Dropout`, or None.
  """

  model: nn.Module
  kernel_init: Optional[initializers.Initializer] = None
  bias_init: Optional[initializers.Initializer] = None
  strip_batch_norm: bool = False
  require_batch_norm: bool = False
  dropout: Optional[float] = None

  def setup(self):
    nn.share_scope(self, self.model)

  def __call__(self, *args: Any, **kwargs: Any) -> Any:
    """Calls the model with the overrides in effect; arguments and result are the model's."""
    seen: set[type] = set()
    with nn.intercept_methods(functools.partial(_intercept, self, seen)):
      out = self.model(*args, **kwargs)
    if self.is_initializing():
      model = type(self.model).__name__
      if self.dropout and nn.Dropout not in seen:
        raise ConfigError(f"model.dropout={self.dropout}: {model} has no dropout layer; leave model.dropout at "
                          "-1 or pick a model with dropout (e.g. simple_cnn, vgg16, alexnet, mobilenet_v2)")
      if self.require_batch_norm and nn.BatchNorm not in seen:
        raise ConfigError(f"model.batch_norm=on: {model} has no batch norm to switch on; leave model.batch_norm "
                          "empty or pick a model with batch norm (e.g. vgg16_bn, simple_cnn, resnet18)")
    return out


def _intercept(o: Overrides, seen: set[type], next_fun: Callable[..., Any], args: tuple, kwargs: dict,
               context: Any) -> Any:
  """The interceptor of `Overrides`: sees every module method call inside the wrapped model."""
  module = context.module
  if context.method_name != "__call__":
    return next_fun(*args, **kwargs)
  seen.add(type(module))
  swap = {}
  if isinstance(module, nn.BatchNorm) and o.strip_batch_norm:
    return args[0] if args else kwargs["x"]
  if isinstance(module, nn.Dropout) and o.dropout is not None:
    swap["rate"] = o.dropout
  if hasattr(module, "kernel_init") and module.is_initializing():
    swap.update({k: v for k, v in (("kernel_init", o.kernel_init), ("bias_init", o.bias_init)) if v is not None})
  with _swapped(module, swap):
    return next_fun(*args, **kwargs)


@contextlib.contextmanager
def _swapped(module: nn.Module, values: dict[str, Any]) -> Iterator[None]:
  """Sets attributes of a (frozen) bound module for the duration of one call, then restores them."""
  old = {k: getattr(module, k) for k in values}
  for k, v in values.items():
    object.__setattr__(module, k, v)
  try:
    yield
  finally:
    for k, v in old.items():
      object.__setattr__(module, k, v)


def build(name: str, *, activation: Union[str, activations.Activation, None] = None,
          kernel_init: Union[str, initializers.Initializer, None] = None,
          bias_init: Union[str, initializers.Initializer, None] = None, batch_norm: Optional[bool] = None,
          dropout: Optional[float] = None, **kwargs: Any) -> nn.Module:
  """Builds the registered model `name` with the training-craft switches of this module's docstring.

  Args:
    name: a registered model name.
    activation: an activation name/spec (`vision_jax.layers.activations`) or callable; None: the model's own.
    kernel_init: an initializer name/spec (`vision_jax.layers.initializers`) or function; None: the model's own.
    bias_init: the same for the biases of layers with a kernel.
    batch_norm: True adds batch norm where the family has a switch for it, False removes every batch norm,
      None keeps the model's own.
    dropout: the rate of every dropout layer in [0, 1), or None for the model's own rates.
    **kwargs: constructor arguments (e.g. `num_classes=10`).

  Returns:
    An unbound Flax module: the registry's model itself when every switch is None, else wrapped in `Overrides`.

  Raises:
    ConfigError: unknown activation or initializer, a dropout rate outside [0, 1).
    UserError: a model that takes no `act` argument.
  """
  if activation is not None:
    kwargs["act"] = activations.get(activation)
  model = registry.get(name, **kwargs)
  has_switch = "batch_norm" in {f.name for f in dataclasses.fields(model)}
  if batch_norm is not None and has_switch:
    model = model.clone(batch_norm=batch_norm)
  if dropout is not None and not 0.0 <= dropout < 1.0:
    raise ConfigError(f"model.dropout={dropout} is not a rate in [0, 1); use e.g. 0.5, or -1 for the model's own")
  overrides = dict(kernel_init=None if kernel_init is None else initializers.get(kernel_init),
                   bias_init=None if bias_init is None else initializers.get(bias_init),
                   strip_batch_norm=batch_norm is False, require_batch_norm=batch_norm is True and not has_switch,
                   dropout=dropout)
  if all(v is None or v is False for v in overrides.values()):
    return model
  return Overrides(model, **overrides)


_SWITCH = {"": None, "on": True, "true": True, "off": False, "false": False}


def from_config(model_config: Mapping[str, Any], **kwargs: Any) -> nn.Module:
  """Builds the model of a config's `model` section.

  Args:
    model_config: `config.model`: `name`, `kwargs` (constructor arguments) and optionally `activation`,
      `kernel_init`, `bias_init` (strings, "" for the model's own), `batch_norm` ("", "on" or "off") and
      `dropout` (a float, < 0 for the model's own rates).
    **kwargs: further constructor arguments (the task's `num_classes`).

  Returns:
    The model, see `build`.

  Raises:
    ConfigError: a bad switch value.
  """
  batch_norm = str(model_config.get("batch_norm", "")).strip().lower()
  if batch_norm not in _SWITCH:
    raise ConfigError(f"model.batch_norm={batch_norm!r}: write on, off or leave it empty for the model's own")
  dropout = float(model_config.get("dropout", -1.0))
  extra = model_config.get("kwargs") or {}
  extra = extra.to_dict() if hasattr(extra, "to_dict") else dict(extra)
  return build(model_config["name"], activation=model_config.get("activation", "") or None,
               kernel_init=model_config.get("kernel_init", "") or None,
               bias_init=model_config.get("bias_init", "") or None, batch_norm=_SWITCH[batch_norm],
               dropout=None if dropout < 0 else dropout, **extra, **kwargs)
