"""Fully convolutional networks (Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015): a VGG classifier with its fully connected layers turned into convolutions, per-pixel
class scores at stride 32, upsampled back to the image, optionally fused with finer scores from pool4 (FCN-16s)
and pool3 (FCN-8s).

Layout "paper" is the released Caffe net (voc-fcn{32,16,8}s): conv1_1 pads 100 pixels so that any input size
survives the 7x7 "valid" fc6, pooling rounds up (Caffe), fc6 = 7x7 conv 4096 and fc7 = 1x1 conv 4096 (both with
ReLU and dropout 0.5), every score layer is a zero-initialised 1x1 conv, the upsampling layers are transposed
convs without bias initialised to bilinear interpolation (`layers.upsampling.bilinear_kernel`: 4x4/2 for the
2x steps, learned; the last one, 64x64/32, 32x32/16 or 16x16/8, is a fixed bilinear interpolation, a constant
rather than a parameter, as the reference nets fix it with lr_mult 0), and
every fusion crops the finer map at the offset that aligns the two grids. The offsets are derived here from the
layers' geometry (`crop_offsets`) rather than typed in; for the paper layout they come out as Caffe's: 5
(pool4), 9 (pool3), and 19 / 27 / 31 for the final crop of FCN-32s / 16s / 8s.

Layout "same" (the small backbones for the digits) pads every conv to keep sizes ("same" fc6 of any kernel),
pads the input at the bottom/right to a multiple of 32 and upsamples with padding factor / 2, so every grid is
aligned (all offsets 0) and the output is cropped back to the input size.
"""

from __future__ import annotations

import fractions
import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError
from vision_jax.layers.conv import max_pool
from vision_jax.layers.upsampling import TransposedConv, bilinear_init, bilinear_kernel, transposed_conv
from vision_jax.models.registry import register_factory

LAYOUTS = ("paper", "same")
VARIANTS = {"32s": 32, "16s": 16, "8s": 8}  # name -> stride of the finest fused scores
VGG16_STAGES = (2, 2, 3, 3, 3)
VGG16_WIDTHS = (64, 128, 256, 512, 512)
PAPER_INPUT_PADDING = 100
AT_ONCE_SKIP_SCALES = (0.01, 0.0001)  # pool4, pool3 in Caffe's voc-fcn8s-atonce (Shelhamer et al., PAMI 2017)


def center_crop(x: jax.Array, offset: tuple[int, int], size: tuple[int, int]) -> jax.Array:
  """x[:, oy:oy + h, ox:ox + w] of [N, H, W, C] (Caffe's Crop layer)."""
  (oy, ox), (h, w) = offset, size
  if oy < 0 or ox < 0 or oy + h > x.shape[1] or ox + w > x.shape[2]:
    raise ConfigError(f"cannot crop {h}x{w} at offset ({oy}, {ox}) from a {x.shape[1]}x{x.shape[2]} map; the "
                      "input is too small for this network: use larger images")
  return x[:, oy:oy + h, ox:ox + w]


def _upsampling_geometry(factor: int, layout: str) -> tuple[int, int]:
  """(kernel, padding) of a bilinear transposed conv by `factor` (FCN's kernel size 2f - f % 2)."""
  return 2 * factor - factor % 2, (factor // 2 if layout == "same" else 0)


def crop_offsets(layout: str = "paper", fc_kernel: int = 7) -> dict[str, int]:
  """Crop offsets of FCN's fusions, from the coordinate map of every layer (Caffe's crop arithmetic).

  A map's pixel f sits at image coordinate scale * f + shift. A k x k conv with padding p shifts by
  (k - 1) / 2 - p, a 2x2/2 pool maps f to 2 f + 1/2, a transposed conv (kernel k, stride s, padding p) maps
  input f to output s f + (k - 1) / 2 - p. A finer map is cropped at the offset that puts its pixel 0 where the
  upsampled coarse map's pixel 0 is.

  Args:
    layout: "paper" (pad 100, valid fc6) or "same".
    fc_kernel: fc6's kernel size.

  Returns:
    {"pool4", "pool3": offsets of the skip crops, "32s", "16s", "8s": offsets of the final crop}.
  """
  half = fractions.Fraction(1, 2)
  first_shift = 1 - (PAPER_INPUT_PADDING if layout == "paper" else 1)  # conv1_1: (3 - 1) / 2 - padding
  pools = []  # (scale, shift) of pool1..pool5
  scale, shift = 1, fractions.Fraction(first_shift)
  for _ in range(5):
    scale, shift = scale * 2, shift + scale * half
    pools.append((scale, shift))
  fc_shift = pools[4][1] + (scale * fractions.Fraction(fc_kernel - 1, 2) if layout == "paper" else 0)

  def upsampled(shift: fractions.Fraction, scale: int, factor: int) -> tuple[int, fractions.Fraction]:
    kernel, padding = _upsampling_geometry(factor, layout)
    return scale // factor, shift - fractions.Fraction(scale, factor) * (fractions.Fraction(kernel - 1, 2) - padding)

  def offset(target: tuple[int, fractions.Fraction], cropped: tuple[int, fractions.Fraction]) -> int:
    value = (target[1] - cropped[1]) / cropped[0]  # cropped pixel `value` lies where target pixel 0 does
    if value.denominator != 1 or value < 0:
      raise ConfigError(f"FCN grids do not align (offset {value}); use the paper or the same layout")
    return int(value)

  out, image = {}, (1, fractions.Fraction(0))
  coarse32 = (32, fc_shift)
  out["32s"] = offset(image, upsampled(coarse32[1], 32, 32))
  up16 = upsampled(coarse32[1], 32, 2)
  out["pool4"] = offset(up16, pools[3])
  out["16s"] = offset(image, upsampled(up16[1], 16, 16))
  up8 = upsampled(up16[1], 16, 2)
  out["pool3"] = offset(up8, pools[2])
  out["8s"] = offset(image, upsampled(up8[1], 8, 8))
  return out


def upsampling_layer(factor: int, classes: int, layout: str, name: str) -> TransposedConv:
  """FCN's bilinear-initialised transposed conv by `factor` (no bias)."""
  kernel, padding = _upsampling_geometry(factor, layout)
  return TransposedConv(classes, kernel, factor, padding, use_bias=False, kernel_init=bilinear_init(factor),
                        name=name)


def score_layer(classes: int, name: str) -> nn.Conv:
  """A zero-initialised 1x1 class-score conv (FCN initialises every score layer at zero)."""
  return nn.Conv(classes, (1, 1), kernel_init=nn.initializers.zeros, name=name)


class FCN(nn.Module):
  """FCN-32s / 16s / 8s on a VGG-style backbone: images [N, H, W, C] -> per-pixel logits [N, H, W, K].

  Attributes:
    num_classes: K.
    variant: "32s", "16s" or "8s".
    stage_convs: 3x3 convs per stage (five stages, each ending in a 2x2/2 max pool); VGG16's by default.
    widths: channels of the five stages.
    fc_width: channels of fc6 and fc7.
    fc_kernel: fc6's kernel (7 in VGG16, whose fc6 read a 7x7 pool5).
    layout: "paper" (pad 100, ceil pools, valid fc6, Caffe crops) or "same" (see the module docstring).
    dropout: rate after fc6 and fc7.
    skip_scales: factors on pool4 and pool3 before their score layers; (1, 1) for the staged nets,
      `AT_ONCE_SKIP_SCALES` (0.01, 0.0001) for the paper's FCN-8s trained all at once (voc-fcn8s-atonce), which
      keeps the fine skips from swamping the coarse scores early in training.
    dtype: computation dtype.
  """

  num_classes: int = 21
  variant: str = "8s"
  stage_convs: Sequence[int] = VGG16_STAGES
  widths: Sequence[int] = VGG16_WIDTHS
  fc_width: int = 4096
  fc_kernel: int = 7
  layout: str = "paper"
  dropout: float = 0.5
  skip_scales: Sequence[float] = (1.0, 1.0)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Args: images [N, H, W, C]; train enables dropout. Returns: logits [N, H, W, num_classes]."""
    if self.variant not in VARIANTS or self.layout not in LAYOUTS or len(self.stage_convs) != 5:
      raise ConfigError(f"FCN variant {self.variant!r}, layout {self.layout!r}, {len(self.stage_convs)} stages: use "
                        f"a variant of {', '.join(VARIANTS)}, a layout of {', '.join(LAYOUTS)} and five stages")
    height, width = images.shape[1:3]
    x = images.astype(self.dtype)
    paper = self.layout == "paper"
    if not paper:  # bottom/right zero padding to a multiple of 32 keeps every grid aligned
      x = jnp.pad(x, ((0, 0), (0, -height % 32), (0, -width % 32), (0, 0)))
    pools = []
    for stage, (convs, features) in enumerate(zip(self.stage_convs, self.widths)):
      for i in range(convs):
        pad = PAPER_INPUT_PADDING if paper and stage == 0 and i == 0 else 1
        x = nn.relu(nn.Conv(features, (3, 3), padding=pad, dtype=self.dtype, name=f"conv{stage + 1}_{i + 1}")(x))
      x = max_pool(x, 2, 2, 0, ceil_mode=True)
      pools.append(x)
    fc_padding = "VALID" if paper else "SAME"
    x = nn.relu(nn.Conv(self.fc_width, (self.fc_kernel,) * 2, padding=fc_padding, dtype=self.dtype, name="fc6")(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = nn.relu(nn.Conv(self.fc_width, (1, 1), dtype=self.dtype, name="fc7")(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    scores = score_layer(self.num_classes, "score_fr")(x)
    offsets = crop_offsets(self.layout, self.fc_kernel)
    stride = VARIANTS[self.variant]
    skips = (("pool4", pools[3], self.skip_scales[0]),
             ("pool3", pools[2], self.skip_scales[1]))[:{32: 0, 16: 1, 8: 2}[stride]]
    for name, pool, scale in skips:
      scores = upsampling_layer(2, self.num_classes, self.layout, f"upscore_{name}")(scores)
      skip = score_layer(self.num_classes, f"score_{name}")(pool * scale if scale != 1 else pool)
      scores = scores + center_crop(skip, (offsets[name],) * 2, scores.shape[1:3])
    # The last upsampling is fixed bilinear interpolation (a constant, as the reference nets' lr_mult 0 layer).
    _, padding = _upsampling_geometry(stride, self.layout)
    scores = transposed_conv(scores, jnp.asarray(bilinear_kernel(stride, self.num_classes), scores.dtype), stride,
                             padding)
    return center_crop(scores, (offsets[self.variant],) * 2, (height, width)).astype(jnp.float32)


def _presets() -> dict[str, functools.partial]:
  presets = {}
  for variant in VARIANTS:
    presets[f"fcn{variant}_vgg16"] = functools.partial(FCN, variant=variant)
    presets[f"fcn{variant}_small"] = functools.partial(
        FCN, variant=variant, num_classes=11, stage_convs=(1, 1, 2, 2, 2), widths=(16, 32, 64, 96, 128),
        fc_width=256, fc_kernel=3, layout="same", dropout=0.1)
  return presets


PRESETS = _presets()
for _name, _factory in PRESETS.items():
  register_factory(_name, _factory)
