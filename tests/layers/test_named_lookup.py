"""Activation and initializer specs that cannot be built: one ConfigError naming the problem and the fix."""

import pytest

from vision_jax.errors import ConfigError
from vision_jax.layers import activations, initializers


@pytest.mark.parametrize("get,spec,message", [
    (activations.get, "relu7", "unknown activation 'relu7'. Did you mean relu"),
    (activations.get, "leaky_relu(slope=0.2)", "unknown argument(s) slope; leaky_relu accepts: negative_slope=0.01"),
    (activations.get, "relu(x=1)", "unknown argument(s) x"),
    (activations.get, "prelu(init=0.1)", "prelu accepts: init_slope=0.25, channel_shared=False"),
    (activations.get, "elu(alpha=a)", "cannot parse activation"),
    (initializers.get, "he_norm", "unknown initializer 'he_norm'. Did you mean he_normal"),
    (initializers.get, "constant", "missing 1 required positional argument: 'value'; write e.g. constant(value=0.1)"),
    (initializers.get, "truncated_normal(std=0.1)", "truncated_normal accepts: stddev=0.01"),
    (initializers.get, "constant(value=x)", "cannot parse initializer"),
])
def test_bad_specs_are_one_config_error(get, spec, message):
  with pytest.raises(ConfigError) as e:
    get(spec)
  assert message in str(e.value)
