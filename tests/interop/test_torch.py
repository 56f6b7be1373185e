"""torchvision import: our logits with imported weights vs torchvision's on the committed fixtures
(tests/fixtures/interop/, made by make_torchvision_fixtures.py), live when torchvision is importable, and
the error for a state dict that does not fit."""

import os
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import models
from vision_jax.errors import UserError
from vision_jax.interop import torch as torch_interop

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "interop")
sys.path.insert(0, FIXTURES)
from fill import fill_state_dict  # noqa: E402  pylint: disable=wrong-import-position

FAST = ["alexnet", "vgg11", "resnet18", "resnet50", "googlenet", "mobilenet_v2", "efficientnet_b0"]
SLOW = ["vgg16", "vgg19_bn", "resnet152", "inception_v3", "densenet121"]


def _fixture(name):
  with np.load(os.path.join(FIXTURES, f"torchvision_{name}.npz")) as f:
    data = {k: f[k] for k in f.files}
  keys = [str(k) for k in data["keys"]]
  shapes = [tuple(int(v) for v in s.split(",")) if s else () for s in (str(x) for x in data["shapes"])]
  state = fill_state_dict(keys, shapes)
  checksum = sum(float(v.sum()) for v in state.values())
  assert checksum == pytest.approx(float(data["checksum"]), rel=1e-6), "numpy's generator stream changed"
  return state, data


def max_logit_diff(name):
  state, data = _fixture(name)
  kwargs = {"hidden_units": int(data["hidden_units"])} if int(data["hidden_units"]) else {}
  if name.startswith("vgg") and kwargs:
    kwargs["hidden_units"] = (kwargs["hidden_units"],) * 2
  variables = torch_interop.load(name, state, **kwargs)
  model = models.get(name, num_classes=data["logits"].shape[1], **kwargs)
  ours = model.apply(variables, jnp.asarray(data["images_nhwc"]), train=False)
  return float(np.abs(np.asarray(ours) - data["logits"]).max())


@pytest.mark.parametrize("name", FAST)
def test_torchvision_parity(name):
  assert max_logit_diff(name) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_torchvision_parity_slow(name):
  assert max_logit_diff(name) <= 1e-4


def test_misfit_state_dict_lists_every_problem():
  state, _ = _fixture("resnet18")
  state["extra.weight"] = np.zeros((3,), np.float32)
  state["fc.bias"] = np.zeros((7,), np.float32)
  state["layer1.0.conv1.weight"] = np.zeros((64, 64, 1, 1), np.float32)
  state.pop("layer4.1.bn2.running_var")
  with pytest.raises(UserError) as e:
    torch_interop.load("resnet18", state)
  msg = str(e.value)
  assert "2 mis-shaped: " in msg and "1 missing: batch_stats/layer4_1/conv2/bn/var" in msg
  assert "params/layer1_0/conv1/conv/kernel: torchvision state dict (1, 1, 64, 64) vs ours (3, 3, 64, 64)" in msg
  assert "params/logits/bias: torchvision state dict (7,) vs ours (5,)" in msg
  assert "1 unexpected: extra.weight" in msg and "\n" not in msg


def test_missing_module_stops_pairing_with_a_clear_message():
  state, _ = _fixture("resnet18")
  state = {k: v for k, v in state.items() if not k.startswith("layer1.0.conv1.")}
  with pytest.raises(UserError, match=r"layer1\.0\.bn1 is a bn but layer1_0/conv1/conv is a conv"):
    torch_interop.load("resnet18", state)


def test_wrong_model_is_a_user_error():
  state, _ = _fixture("resnet18")
  with pytest.raises(UserError, match="mis-shaped|missing|unexpected"):
    torch_interop.load("resnet50", state)
  with pytest.raises(UserError, match="no torchvision importer"):
    torch_interop.load("xception", state)


def test_live_torchvision_when_importable():
  torch = pytest.importorskip("torch")
  try:
    tv_models = __import__("torchvision.models", fromlist=["resnet18"])
  except Exception as e:  # pylint: disable=broad-except  (a torchvision wheel that does not match torch)
    pytest.skip(f"torchvision not importable: {e}")
  tv = tv_models.resnet18(weights=None, num_classes=3).eval()
  x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
  with torch.no_grad():
    expected = tv(torch.from_numpy(x)).numpy()
  variables = torch_interop.load("resnet18", tv.state_dict())
  ours = models.get("resnet18", num_classes=3).apply(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
  np.testing.assert_allclose(ours, expected, atol=1e-4)
