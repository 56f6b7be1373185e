"""Config arguments: typed by defaults, smoke switch, clear errors."""

import importlib

import pytest

from vision_jax.configs import common
from vision_jax.errors import ConfigError

mnist_lenet = importlib.import_module("vision_jax.configs.mnist_lenet")


def test_arguments_are_typed_by_defaults():
  args = common.parse_arg("epochs=3, lr=0.5,model=lenet5,smoke", epochs=1, lr=0.1, model="x", smoke=False)
  assert (args.epochs, args.lr, args.model, args.smoke) == (3, 0.5, "lenet5", True)
  assert isinstance(args.lr, float) and isinstance(args.epochs, int)
  assert common.parse_arg("smoke=false", smoke=True).smoke is False


@pytest.mark.parametrize("arg,message", [
    ("epochs=three", "epochs='three' is not a valid int"),
    ("nope=1", "unknown config argument 'nope'"),
    ("epochs", "needs a value"),
    ("smoke=maybe", "not a valid bool"),
])
def test_bad_arguments_are_config_errors(arg, message):
  with pytest.raises(ConfigError, match=message):
    common.parse_arg(arg, epochs=1, smoke=False)


def test_default_experiment_and_its_smoke_form():
  config = mnist_lenet.get_config()
  assert config.model.name == "lenet5_relu" and config.dataset.name == "mnist_embedded"
  smoke = mnist_lenet.get_config("smoke")
  assert 0 < smoke.num_train_steps <= 20 and smoke.input.batch_size <= 32
  classic = mnist_lenet.get_config("model=lenet5")
  assert "pad(to=32)" in classic.input.preprocess


def test_layer_sizes_parse_and_bad_ones_name_the_fix():
  assert common.parse_sizes("widths", "16-32-64", "widths", "16-32") == (16, 32, 64)
  assert common.parse_sizes("widths", " 8 - 4 ", "widths", "16-32", count=2) == (8, 4)
  assert common.parse_sizes("widths", "", "widths", "16-32") == ()
  with pytest.raises(ConfigError, match="widths=''; give the channels as A-B-..., e.g. 16-32"):
    common.parse_sizes("widths", "", "the channels", "16-32", allow_empty=False)
  for text, count in (("64-x", None), ("16-", None), ("0-8", None), ("-8", None), ("8-16-32", 2), ("8", 2)):
    with pytest.raises(ConfigError, match=r"give the channels as A-B(-\.\.\.)?, e.g. 16-32"):
      common.parse_sizes("widths", text, "the channels", "16-32", count=count)


@pytest.mark.parametrize("config,arg", [("localization_digits", "widths=64-x"),
                                        ("localization_digits", "crop_widths=a"),
                                        ("sliding_window_digits", "widths=16-x"),
                                        ("sliding_window_digits", "widths=")])
def test_config_widths_are_checked(config, arg):
  module = importlib.import_module(f"vision_jax.configs.{config}")
  with pytest.raises(ConfigError, match=arg.split("=")[0] + "='"):
    module.get_config(arg + ",smoke")
