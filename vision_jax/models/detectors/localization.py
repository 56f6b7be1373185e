"""Classification + localisation of one object, and landmark regression: a backbone from the classifier zoo
with a class head, a box head and (optionally) a keypoint head.

The backbone is any zoo classifier built with `num_classes = feature_dim`; its output, through a ReLU, is the
feature vector every head reads. Coordinates are normalised by the input's width and height:

  * boxes: sigmoid(raw) gives (cx, cy, w, h) in [0, 1], returned as xyxy (so boxes are never inverted);
  * keypoints: 0.5 + raw (x, y) per keypoint, unbounded (a landmark may lie outside the image) and a
    visibility logit per keypoint.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models import overrides


def decode_boxes(raw: jax.Array) -> jax.Array:
  """Raw box outputs [..., 4] -> normalised xyxy [..., 4] from sigmoid (cx, cy, w, h)."""
  cx, cy, w, h = jnp.moveaxis(jax.nn.sigmoid(raw.astype(jnp.float32)), -1, 0)
  return jnp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


class LocalizationNet(nn.Module):
  """Backbone -> ReLU features -> class logits, one box and K keypoints.

  Attributes:
    backbone: a zoo classifier module mapping images [N, H, W, C] to [N, feature_dim] (its `num_classes`).
    num_classes: object classes.
    num_keypoints: K (0: no keypoint head).
    dtype: computation dtype of the heads (outputs are float32).
  """

  backbone: nn.Module
  num_classes: int
  num_keypoints: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    """Images [N, H, W, C] -> {"logits": [N, classes], "boxes": [N, 4] normalised xyxy, and with keypoints
    "keypoints": [N, K, 2] normalised x, y and "visibility": [N, K] logits}."""
    features = nn.relu(self.backbone(images, train=train))
    outputs = {"logits": nn.Dense(self.num_classes, dtype=self.dtype, name="class_head")(features).astype(jnp.float32),
               "boxes": decode_boxes(nn.Dense(4, dtype=self.dtype, name="box_head")(features))}
    if self.num_keypoints:
      raw = nn.Dense(3 * self.num_keypoints, dtype=self.dtype, name="keypoint_head")(features).astype(jnp.float32)
      raw = raw.reshape((raw.shape[0], self.num_keypoints, 3))
      outputs["keypoints"] = 0.5 + raw[..., :2]
      outputs["visibility"] = raw[..., 2]
    return outputs


def build(backbone: str, num_classes: int, num_keypoints: int = 0, feature_dim: int = 256,
          backbone_config: Any = None, **kwargs: Any) -> LocalizationNet:
  """A `LocalizationNet` on the zoo classifier `backbone`.

  Args:
    backbone: a registered classifier name (e.g. "simple_cnn").
    num_classes: object classes.
    num_keypoints: K (0 for no keypoint head).
    feature_dim: width of the backbone's output, the heads' input.
    backbone_config: a config `model` section (switches such as dropout, batch_norm, kwargs); only its
      switches and kwargs are used, the name is `backbone`.
    **kwargs: further constructor arguments of the backbone (e.g. dtype).
  """
  section = dict(backbone_config or {})
  section["name"] = backbone
  trunk = overrides.from_config(section, num_classes=feature_dim, **kwargs)
  return LocalizationNet(trunk, num_classes, num_keypoints, dtype=kwargs.get("dtype", jnp.float32))
