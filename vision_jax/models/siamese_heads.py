"""Two inputs, several heads: one shared (Siamese) encoder for both inputs and one output layer per head.

`SharedEncoderHeads` encodes each input with the same `ConvEncoder` (one set of parameters: the two branches
share every weight, as in a Siamese network, Bromley et al., "Signature verification using a Siamese time delay
neural network", NIPS 1993), fuses the two embeddings with their absolute difference and product, and maps the
fused features to one output per head: [N, width] raw values (a regression value, class logits or a binary
logit; the task decides the loss).

Example:
  >>> model = get("siamese_multi_head")  # heads digit_sum (1), first_digit (10), same_digit (1)
  >>> x = jnp.zeros((2, 28, 28, 1))
  >>> outputs = model.apply(model.init(jax.random.key(0), x, x), x, x)
  >>> {k: v.shape for k, v in outputs.items()}
  {'digit_sum': (2, 1), 'first_digit': (2, 10), 'same_digit': (2, 1)}
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.layers.conv import max_pool
from vision_jax.models.registry import register

DIGIT_HEADS = (("digit_sum", 1), ("first_digit", 10), ("same_digit", 1))


class ConvEncoder(nn.Module):
  """conv3x3-ReLU-pool blocks and a dense ReLU embedding: images [N, H, W, C] -> [N, embed_dim].

  Attributes:
    widths: channels of the 3x3 "same" convolutions, each followed by 2x2 max pooling.
    embed_dim: embedding size.
    dtype: computation dtype.
  """

  widths: Sequence[int] = (32, 64)
  embed_dim: int = 128
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images.astype(self.dtype)
    for i, width in enumerate(self.widths):
      x = max_pool(nn.relu(nn.Conv(width, (3, 3), padding="SAME", dtype=self.dtype, name=f"conv{i}")(x)), 2, 2)
    return nn.relu(nn.Dense(self.embed_dim, dtype=self.dtype, name="embed")(x.reshape((x.shape[0], -1))))


@register("siamese_multi_head")
class SharedEncoderHeads(nn.Module):
  """Two inputs through one shared encoder, a fusion layer, and one linear output per head.

  Attributes:
    heads: (name, width) of each head; outputs are returned under these names.
    widths: the encoder's convolution channels.
    embed_dim: the encoder's embedding size.
    hidden_units: width of the fusion layer.
    dropout: dropout rate after the fusion layer.
    dtype: computation dtype.
  """

  heads: Sequence[tuple[str, int]] = DIGIT_HEADS
  widths: Sequence[int] = (32, 64)
  embed_dim: int = 128
  hidden_units: int = 128
  dropout: float = 0.2
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    self.encoder = ConvEncoder(self.widths, self.embed_dim, self.dtype)  # one module: both branches share it
    self.fuse = nn.Dense(self.hidden_units, dtype=self.dtype)
    self.drop = nn.Dropout(self.dropout)
    self.outputs = {name: nn.Dense(width, dtype=self.dtype) for name, width in self.heads}

  def encode(self, images: jax.Array) -> jax.Array:
    """One branch: images [N, H, W, C] -> embeddings [N, embed_dim]."""
    return self.encoder(images)

  def predict_heads(self, first: jax.Array, second: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    """Embeddings [N, E] of the two inputs -> {head name: [N, width]}."""
    fused = jnp.concatenate([first, second, jnp.abs(first - second), first * second], axis=-1)
    hidden = self.drop(nn.relu(self.fuse(fused)), deterministic=not train)
    return {name: layer(hidden) for name, layer in self.outputs.items()}

  def __call__(self, first: jax.Array, second: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    """Maps two image batches [N, H, W, C] to {head name: [N, width]}."""
    return self.predict_heads(self.encode(first), self.encode(second), train)


NAMES = ("siamese_multi_head",)
