"""FCN and U-Net: output sizes, the paper's crops and initialisations, parameter counts pinned by hand
arithmetic or torchvision, and the valid U-Net's 572 -> 388."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import models
from vision_jax.errors import ConfigError
from vision_jax.models.segmentation import fcn, unet

# torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=21) (aux_loss
# off), torchvision 0.29.1: sum(p.numel() for p in m.parameters()) and the batch-norm running means/variances.
TORCHVISION_FCN_RESNET50 = 32_957_013
TORCHVISION_FCN_RESNET50_BN_STATS = 54_144


def _count(name, shape, **kwargs):
  return models.count_params(models.get(name, **kwargs), shape)


def _random_variables(model, x, seed=0):
  """Variables of `model` for input `x` drawn with NumPy (no compiled init: tracing only)."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  return jax.tree.map(lambda v: jnp.asarray(rng.normal(0, 0.3, v.shape).astype(np.float32)), shapes)


def _out_shape(model, shape):
  x = jax.ShapeDtypeStruct((1,) + tuple(shape), jnp.float32)
  return jax.eval_shape(lambda x: model.init_with_output({"params": jax.random.key(0)}, x)[0], x).shape


def test_paper_crop_offsets_are_caffes():
  # voc-fcn8s/16s/32s train.prototxt (fcn.berkeleyvision.org): Crop offsets 5 (score_pool4c), 9 (score_pool3c)
  # and 31 / 27 / 19 for the final score.
  assert fcn.crop_offsets("paper", 7) == {"pool4": 5, "pool3": 9, "32s": 19, "16s": 27, "8s": 31}
  assert fcn.crop_offsets("same", 3) == {"pool4": 0, "pool3": 0, "32s": 0, "16s": 0, "8s": 0}


def _vgg16_fcn_count(variant, classes=21):
  vgg16_convs = 14_714_688  # torchvision vgg16's 138,357,544 minus its classifier's 123,642,856
  fc6, fc7 = 7 * 7 * 512 * 4096 + 4096, 4096 * 4096 + 4096
  total = vgg16_convs + fc6 + fc7 + 4096 * classes + classes  # + score_fr
  skips = {"32s": (), "16s": (512,), "8s": (512, 256)}[variant]
  for channels in skips:  # a score layer (with bias) and a learned 4x4 2x upsampling (no bias) per skip
    total += channels * classes + classes + 4 * 4 * classes * classes
  return total  # the final bilinear upsampling is a constant


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_vgg16_fcn_parameter_count_and_size(variant):
  model = models.get(f"fcn{variant}_vgg16")
  assert models.count_params(model, (224, 224, 3)) == {"params": _vgg16_fcn_count(variant)}
  assert _out_shape(model, (227, 300, 3)) == (1, 227, 300, 21)


def test_fcn_resnet50_matches_torchvision():
  counts = _count("fcn_resnet50", (64, 64, 3))
  assert counts == {"params": TORCHVISION_FCN_RESNET50, "batch_stats": TORCHVISION_FCN_RESNET50_BN_STATS}
  assert _out_shape(models.get("fcn_resnet50", num_classes=5), (72, 40, 3)) == (1, 72, 40, 5)


@pytest.fixture(scope="module")
def tiny_paper_fcn():
  """FCN-8s in the paper layout with tiny widths, and its variables for a 37x50 input."""
  model = fcn.FCN(num_classes=3, variant="8s", stage_convs=(1, 1, 1, 1, 1), widths=(4, 4, 4, 4, 4), fc_width=8)
  x = jax.random.normal(jax.random.key(1), (2, 37, 50, 3))
  return model, x, jax.jit(model.init)(jax.random.key(0), x)


def test_fcn_score_layers_start_at_zero_and_upsampling_bilinear(tiny_paper_fcn):
  model, x, variables = tiny_paper_fcn
  params = variables["params"]
  for name in ("score_fr", "score_pool4", "score_pool3"):
    assert not np.any(np.asarray(params[name]["kernel"])) and not np.any(np.asarray(params[name]["bias"]))
  taps = np.array([0.25, 0.75, 0.75, 0.25])  # 1 - |i - 1.5| / 2: the 2x bilinear filter of FCN's upsample_filt
  for name in ("upscore_pool4", "upscore_pool3"):
    kernel = np.asarray(params[name]["kernel"])
    assert kernel.shape == (4, 4, 3, 3)
    for c in range(3):
      np.testing.assert_allclose(kernel[:, :, c, c], np.outer(taps, taps), rtol=0, atol=1e-7)
    assert not np.any(kernel[:, :, 0, 1])
  logits = jax.jit(model.apply)(variables, x)
  assert logits.shape == (2, 37, 50, 3) and not np.any(np.asarray(logits))  # zero scores at the start


def test_fcn_final_upsampling_is_bilinear_interpolation(tiny_paper_fcn):
  # FCN-32s's fixed 64x64/32 bilinear upsampling (padding 16 in the same layout) gives a constant score map back
  # unchanged away from the borders (the kernel's overlapping taps sum to 1 there).
  model = fcn.FCN(num_classes=1, variant="32s", stage_convs=(1,) * 5, widths=(4,) * 5, fc_width=4, layout="same",
                  fc_kernel=1)
  x = jnp.zeros((1, 256, 256, 3))
  params = jax.tree.map(jnp.zeros_like, jax.eval_shape(model.init, jax.random.key(0), x)["params"])
  params["score_fr"]["bias"] = jnp.ones(1)  # constant score 1 everywhere
  out = np.asarray(jax.jit(model.apply)({"params": params}, x))[0, :, :, 0]
  np.testing.assert_allclose(out[32:-32, 32:-32], 1.0, atol=1e-6)  # interpolating a constant gives it back


def test_small_fcn_variants_keep_the_input_size():
  for variant in ("32s", "16s", "8s"):
    assert _out_shape(models.get(f"fcn{variant}_small"), (70, 96, 1)) == (1, 70, 96, 11)


def test_at_once_fcn8s_scales_the_skips_before_scoring():
  """Scaling pool4 by 0.01 and pool3 by 1e-4 before a 1x1 score conv equals scaling that conv's kernel."""
  plain = fcn.FCN(num_classes=3, variant="8s", stage_convs=(1,) * 5, widths=(4,) * 5, fc_width=8, fc_kernel=3,
                  layout="same", dropout=0.0)
  at_once = plain.clone(skip_scales=fcn.AT_ONCE_SKIP_SCALES)
  x = jax.random.normal(jax.random.key(1), (1, 32, 32, 1))
  params = plain.init(jax.random.key(2), x)["params"]
  params = jax.tree.map(lambda p: jax.random.normal(jax.random.key(3), p.shape), params)  # non-zero scores
  rescaled = dict(params)
  for name, scale in (("score_pool4", 0.01), ("score_pool3", 1e-4)):
    rescaled[name] = {"kernel": params[name]["kernel"] * scale, "bias": params[name]["bias"]}
  want = np.asarray(plain.apply({"params": rescaled}, x), np.float64)
  got = np.asarray(at_once.apply({"params": params}, x), np.float64)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert np.abs(got - np.asarray(plain.apply({"params": params}, x))).max() > 1e-3  # the scaling does act


def test_unet_valid_maps_572_to_388():
  assert unet.valid_output_size(572, 4) == 388
  assert unet.valid_output_size(570, 4) == -1  # 566 after the first convs, 283 after the pool: odd, invalid
  assert unet.valid_tile(96, 3) == (188, 100)
  assert _out_shape(models.get("unet"), (572, 572, 1)) == (1, 388, 388, 2)


def _unet_count(channels, classes, depth, width, batch_norm=False, upsampling="transposed"):
  """Hand count: two 3x3 convs per level (bias unless batch norm, which has scale and offset), the
  up-convolutions (2x2 transposed, or nearest resize + 3x3 conv), the 1x1 classifier."""
  def double(cin, cout):
    per_conv = (lambda i, o: 9 * i * o + (2 * o if batch_norm else o))
    return per_conv(cin, cout) + per_conv(cout, cout)

  widths = [width * 2**i for i in range(depth + 1)]
  total, cin = 0, channels
  for w in widths:
    total += double(cin, w)
    cin = w
  for level in reversed(range(depth)):
    w = widths[level]
    total += (4 if upsampling == "transposed" else 9) * widths[level + 1] * w + w
    total += double(2 * w, w)
  return total + widths[0] * classes + classes


@pytest.mark.parametrize("name,kwargs,shape,expected", [
    ("unet", {}, (572, 572, 1), dict(channels=1, classes=2, depth=4, width=64)),
    ("unet_same", {}, (64, 64, 1), dict(channels=1, classes=2, depth=4, width=64, batch_norm=True)),
    ("unet_small_same", {"upsampling": "resize"}, (64, 64, 1),
     dict(channels=1, classes=11, depth=3, width=16, batch_norm=True, upsampling="resize")),
])
def test_unet_parameter_counts(name, kwargs, shape, expected):
  assert _count(name, shape, **kwargs)["params"] == _unet_count(**expected)


def test_unet_paper_count_pinned():
  # The paper's network (1 input channel, 2 classes): 31,030,658 trainable values by the hand count above.
  assert _count("unet", (572, 572, 1))["params"] == 31_030_658


def test_mirror_padded_valid_unet_is_the_valid_unet_on_the_reflected_tile():
  model = unet.UNet(num_classes=2, depth=2, width=4, mirror_pad=True)
  x = jax.random.normal(jax.random.key(2), (1, 22, 28, 1))
  variables = _random_variables(model, x)
  out = jax.jit(model.apply)(variables, x)
  assert out.shape == (1, 22, 28, 2)
  # Depth 2: output = 4 b - 12 for a bottom map b, tile = 4 (b + 4) + 12. 22 rows need b = 9: a 64-row tile
  # (21 reflected rows above and below) gives 24 rows, starting 20 rows into the tile, so row 1 is image row 0.
  # 28 columns: b = 10, a 68-column tile (20 each side) gives exactly 28.
  tile = np.pad(np.asarray(x), ((0, 0), (21, 21), (20, 20), (0, 0)), mode="reflect")
  plain = jax.jit(unet.UNet(num_classes=2, depth=2, width=4).apply)(variables, tile)
  assert plain.shape == (1, 24, 28, 2)
  np.testing.assert_allclose(np.asarray(out), np.asarray(plain[:, 1:23]), atol=1e-5)


def test_unet_same_rejects_sizes_not_divisible():
  with pytest.raises(ConfigError, match="divisible by 8"):
    _out_shape(models.get("unet_small_same"), (60, 64, 1))


@pytest.mark.parametrize("padding,batch_norm,size", [
    ("valid", False, 44), pytest.param("same", True, 16, marks=pytest.mark.slow)])
def test_unet_matches_a_hand_written_torch_unet(padding, batch_norm, size):
  # The bench's PyTorch peer (NCHW, torch's own conv, transposed conv, pooling and crop) with our variables.
  torch = pytest.importorskip("torch")
  from vision_jax.bench.segmentation_torch import load_our_variables, torch_unet
  model = unet.UNet(num_classes=3, depth=2, width=4, padding=padding, batch_norm=batch_norm)
  x = np.random.default_rng(5).normal(size=(2, size, size, 2)).astype(np.float32)
  variables = _random_variables(model, x)
  if batch_norm:  # running variances must be positive
    variables = dict(variables, batch_stats=jax.tree.map(lambda v: jnp.abs(v) + 0.5, variables["batch_stats"]))
  ours = np.asarray(jax.jit(model.apply)(variables, x))
  net = torch_unet(2, 3, 2, 4, padding, batch_norm).eval()
  load_our_variables(net, variables, 2, batch_norm)
  with torch.no_grad():
    theirs = net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
  assert ours.shape == theirs.shape == ((2, 4, 4, 3) if padding == "valid" else (2, 16, 16, 3))
  np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
