"""Siamese networks: one embedding network applied to every input (shared weights), and a pair classifier.

`EmbeddingNet` wraps any classifier of the zoo: the backbone is built with `num_classes = embed_dim`, so its
final linear layer (the one that would give class logits) is the embedding head on top of the backbone's
features; the embeddings are optionally L2-normalised. Applying the same module (one set of parameters) to both
images of a pair is what makes the network Siamese (Bromley et al., NIPS 1993).

`PairClassifier` is the verification head of Koch, Zemel, Salakhutdinov, "Siamese Neural Networks for One-shot
Image Recognition" (ICML deep learning workshop 2015): p(same) = sigmoid(sum_j alpha_j |e1_j - e2_j| + b), one
learned weight per embedding dimension. It returns the logit; the loss applies the sigmoid.

Example:
  >>> model = siamese_embedding(backbone="lenet5_relu", embed_dim=32)
  >>> x = jnp.zeros((2, 28, 28, 1))
  >>> model.apply(model.init(jax.random.key(0), x), x).shape
  (2, 32)
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError
from vision_jax.losses.metric import l2_normalize
from vision_jax.models.registry import get, register_factory


class EmbeddingNet(nn.Module):
  """Images -> embeddings through a zoo backbone whose classifier layer has `embed_dim` outputs.

  Attributes:
    backbone: an unbound classifier module mapping [N, H, W, C] to [N, embed_dim] (a tuple with auxiliary
      heads is reduced to its first entry).
    normalize: L2-normalise the embeddings (unit hypersphere, as in FaceNet).
    center: subtract the training set's mean embedding and divide by its standard deviation per dimension (a batch
      norm without scale and offset; its running statistics are those of the training images), before any L2
      normalisation: the centring of "SimpleShot" (Wang et al. 2019), learned with the network.
  """

  backbone: nn.Module
  normalize: bool = True
  center: bool = False

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Maps images [N, H, W, C] to float32 embeddings [N, embed_dim]."""
    out = self.backbone(images, train=train)
    if isinstance(out, (tuple, list)):
      out = out[0]
    out = out.astype(jnp.float32)
    if self.center:
      out = nn.BatchNorm(use_running_average=not train, momentum=0.9, use_scale=False, use_bias=False,
                         name="center")(out)
    return l2_normalize(out) if self.normalize else out

  def features(self, images: jax.Array, train: bool = False, layer: str = "last") -> jax.Array:
    """The backbone's representation below its embedding head: the input of the last `nn.Dense` layer the backbone
    calls (`layer="last"`: its classifier layer's input, e.g. simple_cnn's 512 hidden units after batch norm and
    ReLU) or of the first (`layer="first"`: the flattened convolutional features, simple_cnn's 5x5x64 maps), or the
    backbone's output when it calls none (conv4 with head=False). SimCLR's observation (Chen et al. 2020) is that
    layers below the one the loss shapes keep more of what that loss discards, so they transfer better to unseen
    classes. `layer="first_maps"` gives the first layer's input unflattened, as [N, s, s, C] maps with C the output
    channels of the last `nn.Conv` called before that layer (for location-by-location matching).

    Args:
      images: [N, H, W, C].
      train: training mode of the backbone.
      layer: "last" or "first" linear layer's input, or "first_maps".

    Returns:
      [N, F] float32 features (not normalised, not centred), or [N, s, s, C] for "first_maps".

    Raises:
      ConfigError: "first_maps" of a backbone that calls no `nn.Conv` before an `nn.Dense`, or whose flattened
        block is not square.
    """
    head_inputs, conv_channels = [], []

    def record_dense_inputs(next_fun, args, kwargs, context):
      if context.method_name == "__call__":
        if isinstance(context.module, nn.Dense):
          head_inputs.append(args[0])
        elif isinstance(context.module, nn.Conv) and not head_inputs:
          conv_channels.append(int(context.module.features))
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(record_dense_inputs):
      out = self.backbone(images, train=train)
    if isinstance(out, (tuple, list)):
      out = out[0]
    features = (head_inputs[-1] if layer == "last" else head_inputs[0]) if head_inputs else out
    features = features.reshape((features.shape[0], -1)).astype(jnp.float32)
    return _square_maps(features, head_inputs, conv_channels) if layer == "first_maps" else features


def _square_maps(flat: jax.Array, head_inputs: list, conv_channels: list) -> jax.Array:
  """The first linear layer's flattened input [N, s * s * C] as [N, s, s, C] maps (`EmbeddingNet.features`)."""
  if not head_inputs or not conv_channels:
    raise ConfigError("embedding.match=local matches the conv maps entering the backbone's first linear layer; this "
                      "backbone has none: use match=prototype or a backbone such as simple_cnn")
  channels = conv_channels[-1]
  side = int(round((flat.shape[1] / channels) ** 0.5))
  if side * side * channels != flat.shape[1]:
    raise ConfigError(f"embedding.match=local: the backbone's flattened conv block has {flat.shape[1]} values, not "
                      f"square maps of {channels} channels; use match=prototype")
  return flat.reshape((flat.shape[0], side, side, channels))


class PairClassifier(nn.Module):
  """Koch-style verification: shared embedding of both images, logit = alpha . |e1 - e2| + b.

  Attributes:
    backbone: as in `EmbeddingNet`.
    normalize: L2-normalise the embeddings before the head.
  """

  backbone: nn.Module
  normalize: bool = False

  def setup(self):
    self.embedder = EmbeddingNet(self.backbone, self.normalize)
    self.head = nn.Dense(1, name="pair_head")

  def embed(self, images: jax.Array, train: bool = False) -> jax.Array:
    """One branch: images [N, H, W, C] -> embeddings [N, E]."""
    return self.embedder(images, train=train)

  def pair_logits(self, first: jax.Array, second: jax.Array) -> jax.Array:
    """Embeddings [N, E] of the two sides -> same-class logits [N]."""
    return self.head(jnp.abs(first - second))[:, 0]

  def __call__(self, first: jax.Array, second: jax.Array, train: bool = False) -> jax.Array:
    """Two image batches [N, H, W, C] -> same-class logits [N]."""
    return self.pair_logits(self.embed(first, train), self.embed(second, train))


def siamese_embedding(backbone: str = "lenet5_relu", embed_dim: int = 64, normalize: bool = True, center: bool = False,
                      **backbone_kwargs: Any) -> EmbeddingNet:
  """`EmbeddingNet` around the registered classifier `backbone` (built with `num_classes=embed_dim`)."""
  return EmbeddingNet(get(backbone, num_classes=embed_dim, **backbone_kwargs), normalize, center)


def siamese_pair_classifier(backbone: str = "lenet5_relu", embed_dim: int = 64, normalize: bool = False,
                            **backbone_kwargs: Any) -> PairClassifier:
  """`PairClassifier` around the registered classifier `backbone` (built with `num_classes=embed_dim`)."""
  return PairClassifier(get(backbone, num_classes=embed_dim, **backbone_kwargs), normalize)


register_factory("siamese_embedding", siamese_embedding)
register_factory("siamese_pair_classifier", siamese_pair_classifier)
NAMES = ("siamese_embedding", "siamese_pair_classifier")
