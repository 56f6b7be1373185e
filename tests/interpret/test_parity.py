"""Attribution maps against independent libraries (pytorch-grad-cam, captum, PAIR saliency) on one torchvision
ResNet-18 with seeded weights, imported through `vision_jax.interop.torch` (fixture:
tests/fixtures/interpret/make_references.py)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.fixtures.interop.fill import fill_state_dict
from vision_jax import models
from vision_jax.interop import torch as torch_interop
from vision_jax.interpret import attribution, cam

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "interpret", "references.npz")


@pytest.fixture(scope="module")
def ref():
  with np.load(FIXTURE, allow_pickle=False) as f:
    return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def net(ref):
  shapes = [tuple(int(d) for d in s.split(",") if d) for s in ref["shapes"]]
  state = fill_state_dict([str(k) for k in ref["keys"]], shapes)
  variables = torch_interop.load("resnet18", state, input_shape=(64, 64, 3))
  model = models.get("resnet18", num_classes=10)
  apply_fn = jax.jit(lambda x: model.apply(variables, x))
  return model, variables, apply_fn


# Pixel maps relative to their largest value. Measured: guided backprop and integrated gradients agree to ~3e-7; the
# plain gradient agrees to 5e-7 op by op but to 2.3e-3 at its worst pixel when the model is jitted (XLA's fused
# float32 sums differ from torch's enough to move pre-activations that sit at a ReLU's kink).
PIXEL_TOL = 5e-3


def _rel_max(got, want):
  """Max |got - want| relative to max |want|."""
  return float(np.max(np.abs(np.asarray(got) - want)) / np.max(np.abs(want)))


def test_imported_network_matches_torch(ref, net):
  _, _, apply_fn = net
  logits = np.asarray(apply_fn(jnp.asarray(ref["images"])))
  assert _rel_max(logits, ref["logits"]) < 1e-4


@pytest.mark.parametrize("layer", ["layer3", "layer4"])
@pytest.mark.parametrize("method,key", [("gradcam", "gradcam"), ("gradcam++", "gradcampp")])
def test_cam_matches_pytorch_grad_cam(ref, net, layer, method, key):
  model, variables, _ = net
  maps, _ = cam.class_activation_maps(model, variables, jnp.asarray(ref["images"]), f"{layer}_1",
                                      jnp.asarray(ref["targets"]), method)
  want = ref[f"{key}_{layer}"]
  assert want.shape == maps.shape and want.max() > 0.99  # normalised maps, not all zero
  np.testing.assert_allclose(np.asarray(maps), want, atol=2e-4)


def test_saliency_matches_captum(ref, net):
  _, _, apply_fn = net
  images, targets = jnp.asarray(ref["images"]), jnp.asarray(ref["targets"])
  grads = attribution.input_gradients(apply_fn, images, targets)
  assert _rel_max(jnp.abs(grads), ref["saliency"]) < PIXEL_TOL
  assert _rel_max(attribution.saliency(apply_fn, images, targets), ref["saliency"].max(-1)) < PIXEL_TOL


def test_guided_backprop_matches_captum(ref, net):
  model, variables, apply_fn = net
  guided = attribution.guided_model(model)
  got = attribution.guided_backprop(lambda x: guided.apply(variables, x), jnp.asarray(ref["images"]),
                                    jnp.asarray(ref["targets"]))
  assert _rel_max(got, ref["guided"]) < PIXEL_TOL
  plain = attribution.input_gradients(apply_fn, jnp.asarray(ref["images"]), jnp.asarray(ref["targets"]))
  assert _rel_max(plain, ref["guided"]) > 0.1  # guided differs from the plain gradient: the switch took effect


def test_integrated_gradients_matches_captum(ref, net):
  _, _, apply_fn = net
  got = attribution.integrated_gradients(apply_fn, jnp.asarray(ref["images"]), jnp.asarray(ref["targets"]),
                                        baseline=jnp.asarray(ref["ig_baseline"]), steps=16)
  # captum's "riemann_trapezoid" puts n = 16 points on [0, 1] but weighs them with step 1/n (ends halved), so its
  # weights sum to (n - 1) / n; ours are the trapezoid rule's 1 / (n - 1) (exact for a quadratic, test_attribution).
  assert _rel_max(got * 15 / 16, ref["integrated"]) < PIXEL_TOL


def test_occlusion_matches_captum(ref, net):
  _, _, apply_fn = net
  got = attribution.occlusion(apply_fn, jnp.asarray(ref["images"]), jnp.asarray(ref["targets"]), window=16, stride=8)
  want = ref["occlusion"]
  np.testing.assert_array_equal(want[..., 0], want[..., 2])  # captum's window spans all channels
  assert _rel_max(got, want[..., 0]) < PIXEL_TOL


def test_smoothgrad_matches_pair_saliency_given_its_noise(ref, net):
  _, _, apply_fn = net
  image = ref["images"][0].astype(np.float64)
  samples = int(ref["smooth_samples"])
  legacy = np.random.RandomState(int(ref["smooth_seed"]))  # PAIR draws with np.random after np.random.seed
  stdev = 0.15 * (image.max() - image.min())
  noise = np.stack([legacy.normal(0, stdev, image.shape) for _ in range(samples)])[:, None].astype(np.float32)
  got = attribution.smoothgrad(apply_fn, jnp.asarray(ref["images"][:1]), jnp.asarray(ref["targets"][:1]),
                               noise=jnp.asarray(noise))
  assert _rel_max(got[0], ref["smoothgrad"]) < PIXEL_TOL
