"""EfficientNet B0-B7 (Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", 2019): one B0
definition scaled by width and depth coefficients (compound scaling).

Presets `efficientnet_b0` ... `efficientnet_b7` follow torchvision (symmetric padding, batch-norm eps 1e-5;
b0 has 5,288,548 parameters for 1000 classes); `keras_efficientnet_b0` ... `_b7` follow Keras (TF "same"
padding, eps 1e-3, and Keras' built-in input preprocessing: x / 255 then a per-channel normalization whose
mean and variance are stored as constants in the `batch_stats` collection under `input_norm`).
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import ConvBN, Padding
from vision_jax.layers.mobile import InvertedResidual, make_divisible
from vision_jax.models.registry import register_factory

# (kernel, repeats, output channels, expansion, first stride) of the seven B0 stages; stem 32, head 1280.
_B0_STAGES = ((3, 1, 16, 1, 1), (3, 2, 24, 6, 2), (5, 2, 40, 6, 2), (3, 3, 80, 6, 2), (5, 3, 112, 6, 1),
              (5, 4, 192, 6, 2), (3, 1, 320, 6, 1))
# (width coefficient, depth coefficient, dropout, resolution) of B0..B7.
SCALING = {0: (1.0, 1.0, 0.2, 224), 1: (1.0, 1.1, 0.2, 240), 2: (1.1, 1.2, 0.3, 260), 3: (1.2, 1.4, 0.3, 300),
           4: (1.4, 1.8, 0.4, 380), 5: (1.6, 2.2, 0.4, 456), 6: (1.8, 2.6, 0.5, 528), 7: (2.0, 3.1, 0.5, 600)}


class KerasInputNorm(nn.Module):
  """Keras EfficientNet preprocessing: x / 255, then (x - mean) / max(sqrt(variance), 1e-7) per channel.

  The mean and variance are constants (imported from a Keras file; 0 and 1 by default) kept in `batch_stats`.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [N, H, W, C] to [N, H, W, C]."""
    c = x.shape[-1]
    mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
    var = self.variable("batch_stats", "variance", jnp.ones, (c,), jnp.float32)
    return (x / 255.0 - mean.value) / jnp.maximum(jnp.sqrt(var.value), 1e-7)


class EfficientNet(nn.Module):
  """Stem conv, seven stages of MBConv blocks with squeeze-excite, 1x1 head conv, pool, dropout, dense.

  Attributes:
    width_coefficient: channel multiplier (rounded to multiples of 8).
    depth_coefficient: repeats multiplier (rounded up).
    num_classes: output classes.
    dropout_rate: dropout before the classifier.
    drop_path_rate: stochastic depth rate of the last block (linearly smaller for earlier blocks).
    padding: padding convention ("SYMMETRIC" torchvision, "SAME" Keras).
    bn_eps: batch-norm epsilon.
    keras_input_norm: apply Keras' built-in preprocessing (`KerasInputNorm`) first.
    dtype: computation dtype.
    act: activation of every non-linear conv and of the squeeze-excite bottlenecks (swish).
  """

  width_coefficient: float = 1.0
  depth_coefficient: float = 1.0
  num_classes: int = 1000
  dropout_rate: float = 0.2
  drop_path_rate: float = 0.2
  padding: Padding = "SYMMETRIC"
  bn_eps: float = 1e-5
  keras_input_norm: bool = False
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.swish

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    width = lambda c: make_divisible(c * self.width_coefficient)
    kw = dict(bn_eps=self.bn_eps, dtype=self.dtype, act=self.act)
    x = images.astype(self.dtype)
    if self.keras_input_norm:
      x = KerasInputNorm(name="input_norm")(x)
    x = ConvBN(width(32), 3, 2, self.padding, name="stem", **kw)(x, train)
    repeats = [math.ceil(self.depth_coefficient * r) for _, r, _, _, _ in _B0_STAGES]
    total, i = sum(repeats), 0
    for (kernel, _, channels, expand, stride), n in zip(_B0_STAGES, repeats):
      for j in range(n):
        x = InvertedResidual(width(channels), stride if j == 0 else 1, expand, kernel, se_ratio=0.25,
                             padding=self.padding, drop_path_rate=self.drop_path_rate * i / total,
                             name=f"block{i}", **kw)(x, train)
        i += 1
    x = ConvBN(width(1280), 1, 1, "VALID", name="head", **kw)(x, train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)


for _b, (_w, _d, _drop, _) in SCALING.items():
  register_factory(f"efficientnet_b{_b}", functools.partial(
      EfficientNet, width_coefficient=_w, depth_coefficient=_d, dropout_rate=_drop))
  register_factory(f"keras_efficientnet_b{_b}", functools.partial(
      EfficientNet, width_coefficient=_w, depth_coefficient=_d, dropout_rate=_drop, padding="SAME", bn_eps=1e-3,
      keras_input_norm=True))
