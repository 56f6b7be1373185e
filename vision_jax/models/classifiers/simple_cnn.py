"""The lectures' baseline CNN (the Keras CIFAR-10 example): conv32-conv32-pool-conv64-conv64-pool-FC512-FC,
with dropout 0.25 after each pool and 0.5 before the classifier; 1,250,858 parameters for 32x32x3 inputs and
10 classes."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import max_pool
from vision_jax.models.registry import register


@register("simple_cnn")
class SimpleCNN(nn.Module):
  """Two conv pairs ("same" then "valid" 3x3 convs) with 2x2 max pooling, FC-512, FC-n.

  Attributes:
    num_classes: output classes.
    widths: channels of the two conv pairs.
    hidden_units: width of the hidden dense layer.
    dtype: computation dtype.
    act: activation after every conv and the hidden dense layer (ReLU).
    batch_norm: batch norm before each of those activations (`<layer>_bn`; off in the Keras example).
  """

  num_classes: int = 10
  widths: tuple[int, int] = (32, 64)
  hidden_units: int = 512
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu
  batch_norm: bool = False

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""

    def norm_act(x: jax.Array, name: str) -> jax.Array:
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype, name=f"{name}_bn")(x)
      return self.act(x)

    x = images.astype(self.dtype)
    for i, width in enumerate(self.widths):
      for j, padding in ((2 * i + 1, "SAME"), (2 * i + 2, "VALID")):
        x = norm_act(nn.Conv(width, (3, 3), padding=padding, dtype=self.dtype, name=f"conv{j}")(x), f"conv{j}")
      x = nn.Dropout(0.25, deterministic=not train)(max_pool(x, 2, 2))
    x = norm_act(nn.Dense(self.hidden_units, dtype=self.dtype, name="fc")(x.reshape((x.shape[0], -1))), "fc")
    x = nn.Dropout(0.5, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)
