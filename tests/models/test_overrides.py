"""Activation, initializer, batch-norm and dropout switches on models: defaults change nothing, every family
takes the activation, overridden layers draw what a layer built with the setting would, counts by hand."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vision_jax import layers, models
from vision_jax.configs import common
from vision_jax.errors import ConfigError
from vision_jax.layers import activations, initializers
from vision_jax.models import overrides

SIMPLE_CNN = 1_250_858  # pinned in test_param_counts (32x32x3, 10 classes)
RESNET18_CIFAR = 11_173_962


def _count(model, shape=(32, 32, 3)):
  return models.count_params(model, shape)


def _section(**values):
  section = common.base_config().model
  section.update(values)
  return section


@pytest.mark.parametrize("name", models.names())
def test_default_config_builds_exactly_the_registry_model(name):
  assert overrides.from_config(_section(name=name)) == models.get(name)


def test_switches_left_empty_return_the_plain_model():
  model = overrides.build("resnet18_cifar", activation=None, kernel_init=None, batch_norm=None, dropout=None)
  assert type(model).__name__ == "ResNet"


# One small member of every family; kwargs shrink depth where tracing would take seconds.
FAMILIES = [("lenet5", 32, {}), ("simple_cnn", 32, {}), ("little_vgg", 32, {}), ("alexnet", 64, {}),
            ("vgg11", 32, {}), ("resnet18_cifar", 32, {}), ("resnet50", 32, {"stage_sizes": (1, 1, 1, 1)}),
            ("googlenet", 32, {}), ("inception_v3", 76, {}), ("xception", 72, {"middle_blocks": 1}),
            ("mobilenet_v1", 32, {}), ("mobilenet_v2", 32, {}), ("efficientnet_b0", 32, {"depth_coefficient": 0.3}),
            ("densenet121", 32, {"block_config": (2, 2)}), ("nin", 32, {})]


def _fixed_activation(*args, **kwargs):
  raise AssertionError("a fixed activation was called although the model was given `act`")


@pytest.mark.parametrize("name,size,kwargs", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_takes_the_activation(name, size, kwargs, monkeypatch):
  # With `act` given, no hard-coded relu/relu6/swish may remain: they are made to fail.
  for fixed in ("relu", "relu6", "swish", "silu"):
    monkeypatch.setattr(nn, fixed, _fixed_activation)
  calls = []

  def counting_crelu(x):
    calls.append(x.shape)
    return activations.crelu(x)

  model = overrides.build(name, num_classes=10, activation=counting_crelu, **kwargs)
  x = jnp.zeros((2, size, size, 3))
  logits, _ = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x), x)
  assert logits.shape == (2, 10) and calls


def test_crelu_widens_the_next_layers_of_simple_cnn():
  v = jax.eval_shape(lambda: overrides.build("simple_cnn", activation="crelu").init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
  shapes = {k: p["kernel"].shape for k, p in v["params"].items()}
  assert shapes == {"conv1": (3, 3, 3, 32), "conv2": (3, 3, 64, 32), "conv3": (3, 3, 64, 64),
                    "conv4": (3, 3, 128, 64), "fc": (6 * 6 * 128, 512), "logits": (1024, 10)}


def test_prelu_adds_one_slope_per_channel():
  model = overrides.build("simple_cnn", activation="prelu")
  v = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  slopes = {k: np.asarray(p["slope"]) for k, p in v["params"].items() if k.startswith("PReLU")}
  assert {k: s.shape for k, s in slopes.items()} == {"PReLU_0": (32,), "PReLU_1": (32,), "PReLU_2": (64,),
                                                     "PReLU_3": (64,), "PReLU_4": (512,)}
  assert all(np.all(s == 0.25) for s in slopes.values())
  assert _count(model)["params"] == SIMPLE_CNN + 32 + 32 + 64 + 64 + 512


class _Tiny(nn.Module):
  """A conv and a dense layer whose initializers are constructor fields (the reference for the override)."""

  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: initializers.Initializer = nn.initializers.zeros
  rate: float = 0.1

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(8, (3, 3), kernel_init=self.kernel_init, bias_init=self.bias_init, name="conv")(x)
    x = nn.Dropout(self.rate, deterministic=not train)(x.reshape((x.shape[0], -1)))
    return nn.Dense(4, kernel_init=self.kernel_init, bias_init=self.bias_init, name="fc")(x)


def test_overridden_init_draws_what_the_layer_built_with_it_draws():
  x = jnp.ones((2, 6, 6, 3))
  he, bias = initializers.get("he_uniform"), initializers.get("constant(value=0.1)")
  expected = _Tiny(kernel_init=he, bias_init=bias).init(jax.random.key(7), x)
  got = overrides.Overrides(_Tiny(), kernel_init=he, bias_init=bias).init(jax.random.key(7), x)
  jax.tree.map(np.testing.assert_array_equal, got, expected)
  assert np.all(np.asarray(got["params"]["fc"]["bias"]) == np.float32(0.1))


def test_overridden_dropout_is_the_layer_built_with_that_rate():
  x = jnp.ones((2, 6, 6, 3))
  v = _Tiny().init(jax.random.key(0), x)
  rngs = {"dropout": jax.random.key(5)}
  expected = _Tiny(rate=0.6).apply(v, x, train=True, rngs=rngs)
  got = overrides.Overrides(_Tiny(rate=0.1), dropout=0.6).apply(v, x, train=True, rngs=rngs)
  np.testing.assert_array_equal(got, expected)
  # Rate 0 makes training deterministic: two dropout keys, the same output as evaluation.
  no_drop = overrides.Overrides(_Tiny(rate=0.5), dropout=0.0)
  np.testing.assert_array_equal(no_drop.apply(v, x, train=True, rngs=rngs), _Tiny().apply(v, x))


def test_dropout_rate_statistics():
  class Drop(nn.Module):
    @nn.compact
    def __call__(self, x, train=True):
      return nn.Dropout(0.9, deterministic=not train)(x)

  y = np.asarray(overrides.Overrides(Drop(), dropout=0.3).apply({}, jnp.ones((100_000,)),
                                                                rngs={"dropout": jax.random.key(0)}))
  kept = y[y != 0]
  assert np.mean(y == 0) == pytest.approx(0.3, abs=0.01) and np.allclose(kept, 1 / 0.7)


def test_he_uniform_through_a_model_config():
  section = _section(name="simple_cnn", kernel_init="he_uniform", bias_init="constant(value=0.1)")
  section.kwargs = ml_collections.ConfigDict({"widths": (8, 16), "hidden_units": 256})
  v = jax.jit(overrides.from_config(section).init)(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  for name, p in v["params"].items():
    kernel = np.asarray(p["kernel"], np.float64)
    fan_in = math.prod(kernel.shape[:-1])
    assert np.abs(kernel).max() <= math.sqrt(6 / fan_in), name
    assert np.all(np.asarray(p["bias"]) == np.float32(0.1)), name
  fc = np.asarray(v["params"]["fc"]["kernel"], np.float64)  # [6 * 6 * 16, 256]: 147,456 draws
  assert fc.var() == pytest.approx(2 / fc.shape[0], rel=0.02)


def test_bias_init_leaves_batch_norm_offsets_alone():
  model = overrides.Overrides(layers.ConvBN(4, use_bias=True), bias_init=initializers.get("ones"))
  v = model.init(jax.random.key(0), jnp.zeros((1, 5, 5, 2)))
  assert np.all(np.asarray(v["params"]["conv"]["bias"]) == 1.0)
  assert np.all(np.asarray(v["params"]["bn"]["bias"]) == 0.0) and np.all(np.asarray(v["params"]["bn"]["scale"]) == 1)


def test_batch_norm_off_removes_every_batch_norm():
  # ResNet-18 (CIFAR) has batch norm over 4,800 channels: stem 64, two 2-conv blocks per stage of width
  # 64/128/256/512 (512, 1024, 2048, 4096... per stage: 4 * width) and a projection in stages 2-4 (896).
  bn_channels = 64 + 4 * (64 + 128 + 256 + 512) + (128 + 256 + 512)
  counts = _count(overrides.build("resnet18_cifar", batch_norm=False))
  assert counts == {"params": RESNET18_CIFAR - 2 * bn_channels}
  little = _count(overrides.from_config(_section(name="little_vgg", batch_norm="off")))
  assert "batch_stats" not in little  # conv BN via the family's field, dense BN stripped


def test_batch_norm_on():
  counts = _count(overrides.build("simple_cnn", batch_norm=True))
  bn = 32 + 32 + 64 + 64 + 512  # after the four convs and the hidden dense layer
  assert counts == {"params": SIMPLE_CNN + 2 * bn, "batch_stats": 2 * bn}
  assert _count(overrides.build("vgg11", batch_norm=True)) == _count(models.get("vgg11_bn"))
  # A family built from conv-BN blocks already has it: nothing changes.
  assert _count(overrides.build("resnet18_cifar", batch_norm=True))["params"] == RESNET18_CIFAR


def test_summary_rows_are_not_repeated_under_overrides():
  rows = models.layer_table(overrides.build("simple_cnn", kernel_init="zeros", dropout=0.2, batch_norm=False),
                            (32, 32, 3))
  paths = [r.path for r in rows]
  assert len(paths) == len(set(paths)) and sum(r.trainable for r in rows) == SIMPLE_CNN


@pytest.mark.parametrize("section,message", [
    (dict(name="lenet5", batch_norm="on"), "LeNet5 has no batch norm to switch on"),
    (dict(name="resnet18_cifar", dropout=0.5), "ResNet has no dropout layer"),
    (dict(name="simple_cnn", dropout=1.0), "is not a rate in [0, 1)"),
    (dict(name="simple_cnn", batch_norm="maybe"), "write on, off or leave it empty"),
    (dict(name="simple_cnn", activation="relu9"), "unknown activation 'relu9'"),
    (dict(name="simple_cnn", kernel_init="he"), "unknown initializer 'he'"),
])
def test_impossible_switches_are_config_errors(section, message):
  with pytest.raises(ConfigError) as e:
    model = overrides.from_config(_section(**section))
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
  assert message in str(e.value)


def test_switches_that_are_already_satisfied_are_fine():
  # No dropout asked of a model without dropout, no batch norm of a model without it.
  for section in (dict(name="resnet18_cifar", dropout=0.0), dict(name="lenet5", batch_norm="off")):
    model = overrides.from_config(_section(**section))
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1))))


def test_kwargs_and_num_classes_pass_through():
  section = _section(name="simple_cnn", activation="elu")
  section.kwargs = ml_collections.ConfigDict({"hidden_units": 64})
  model = overrides.from_config(section, num_classes=3)
  assert model.hidden_units == 64 and model.num_classes == 3 and model.act is jax.nn.elu
