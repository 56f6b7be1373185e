"""AlexNet (Krizhevsky et al., "ImageNet Classification with Deep Convolutional Neural Networks", 2012),
in the single-tower torchvision layout 64-192-384-256-256 (61,100,840 parameters for 1000 classes)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.activations import Activation
from vision_jax.layers.conv import adaptive_avg_pool, max_pool
from vision_jax.models.registry import register


@register("alexnet")
class AlexNet(nn.Module):
  """AlexNet: five convs (11x11/4, 5x5, 3x3 x3) with max pooling, then two dropout-FC-4096 layers.

  Inputs of at least 63x63 work; the features are averaged to 6x6 (PyTorch `AdaptiveAvgPool2d`), so the
  classifier is the same for every input size.

  Attributes:
    num_classes: output classes.
    hidden_units: width of the two hidden fully connected layers.
    dropout_rate: dropout before each hidden FC layer.
    dtype: computation dtype.
    act: activation after every conv and hidden FC layer (ReLU).
    batch_norm: batch norm after every conv (`conv<i>_bn`, before the activation; none in the paper).
  """

  num_classes: int = 1000
  hidden_units: int = 4096
  dropout_rate: float = 0.5
  dtype: jnp.dtype = jnp.float32
  act: Activation = nn.relu
  batch_norm: bool = False

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to logits [N, num_classes]."""
    x = images.astype(self.dtype)
    for i, (features, kernel, stride, pad, pool) in enumerate(
        [(64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, False),
         (256, 3, 1, 1, True)]):
      x = nn.Conv(features, (kernel, kernel), stride, padding=[(pad, pad)] * 2, dtype=self.dtype,
                  name=f"conv{i + 1}")(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype, name=f"conv{i + 1}_bn")(x)
      x = self.act(x)
      if pool:
        x = max_pool(x, 3, 2)
    x = adaptive_avg_pool(x, (6, 6)).reshape((x.shape[0], -1))
    for i in range(2):
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = self.act(nn.Dense(self.hidden_units, dtype=self.dtype, name=f"fc{i + 1}")(x))
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(x)
