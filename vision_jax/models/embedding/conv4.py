"""The four-block convolutional embedding of few-shot learning (Vinyals et al. 2016, Snell et al. 2017; Koch et al.
2015 use a deeper relative): four blocks of 3x3 conv (64 channels, "same") + batch norm + ReLU + 2x2 max pooling,
flattened. A 28x28 image gives a 64-d feature (28 -> 14 -> 7 -> 3 -> 1); the ProtoNets embedding is that feature
itself (`head=False`); with `head=True` a linear layer maps it to `num_classes` outputs (the embedding head of the
`embedding` task, or class logits).

Example:
  >>> model = Conv4(num_classes=32)
  >>> x = jnp.zeros((2, 28, 28, 1))
  >>> model.apply(model.init(jax.random.key(0), x), x).shape
  (2, 32)
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import max_pool
from vision_jax.models.registry import register


@register("conv4")
class Conv4(nn.Module):
  """Conv-BN-ReLU-pool blocks, flattened, then an optional linear head.

  Attributes:
    num_classes: outputs of the linear head (ignored when `head` is False).
    widths: channels of the blocks (one block each).
    head: add the linear head; without it the output is the flattened last block, [N, widths[-1] * h * w].
    batch_norm: batch norm after every conv (`conv<i>_bn`); the convs have a bias only without it.
    dtype: computation dtype.
    act: activation after every batch norm.
  """

  num_classes: int = 10
  widths: tuple[int, ...] = (64, 64, 64, 64)
  head: bool = True
  batch_norm: bool = True
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to [N, num_classes] (head) or [N, F] flattened features."""
    x = images.astype(self.dtype)
    for i, width in enumerate(self.widths):
      x = nn.Conv(width, (3, 3), padding="SAME", use_bias=not self.batch_norm, dtype=self.dtype,
                  name=f"conv{i + 1}")(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype, name=f"conv{i + 1}_bn")(x)
      x = max_pool(self.act(x), 2, 2)
    x = x.reshape((x.shape[0], -1))
    if self.head:
      x = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
    return x
