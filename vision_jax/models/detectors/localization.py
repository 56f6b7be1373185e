"""Classification + localisation of one object, and landmark regression: a backbone from the classifier zoo
with a class head, a box head and (optionally) a keypoint head.

The backbone is any zoo classifier built with `num_classes = feature_dim`; its output, through a ReLU, is the
feature vector every head reads. With a `crop_classifier` the class is instead read from the object itself: the
square around the box (side `crop_margin` x its longer side; the given `class_boxes` in training, the predicted
box otherwise, without gradient) is cut from the input by RoIAlign to `crop_size` pixels and classified by a
second zoo classifier (a two-stage head: the digit arrives centred and at one scale, whatever its place and size
in the image). Coordinates are normalised by the input's width and height:

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
from vision_jax.ops.roi_align import roi_align


def decode_boxes(raw: jax.Array) -> jax.Array:
  """Raw box outputs [..., 4] -> normalised xyxy [..., 4] from sigmoid (cx, cy, w, h)."""
  cx, cy, w, h = jnp.moveaxis(jax.nn.sigmoid(raw.astype(jnp.float32)), -1, 0)
  return jnp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def crop_squares(images: jax.Array, boxes: jax.Array, size: int, margin: float) -> jax.Array:
  """Square crops around boxes, resampled by RoIAlign (2 x 2 samples per output pixel, zero outside the image).

  Args:
    images: [N, H, W, C].
    boxes: [N, 4] normalised xyxy, one per image.
    size: output side in pixels.
    margin: crop side / the box's longer side (in pixels).

  Returns:
    [N, size, size, C] float32 crops.
  """
  n, height, width = images.shape[:3]
  pixels = boxes.astype(jnp.float32) * jnp.array([width, height, width, height], jnp.float32)
  centre = (pixels[:, :2] + pixels[:, 2:]) / 2
  half = margin * jnp.maximum(jnp.max(pixels[:, 2:] - pixels[:, :2], -1), 4.0)[:, None] / 2
  squares = jnp.concatenate([centre - half, centre + half], -1)
  return roi_align(images.astype(jnp.float32), squares, jnp.arange(n), (size, size), sampling_ratio=2, aligned=True)


class LocalizationNet(nn.Module):
  """Backbone -> ReLU features -> class logits (or a crop classifier), one box and K keypoints.

  Attributes:
    backbone: a zoo classifier module mapping images [N, H, W, C] to [N, feature_dim] (its `num_classes`).
    num_classes: object classes.
    num_keypoints: K (0: no keypoint head).
    dtype: computation dtype of the heads (outputs are float32).
    crop_classifier: a zoo classifier of [N, crop_size, crop_size, C] crops to [N, num_classes] logits, or None
      for a linear class head on the backbone's features.
    crop_size: side of the crops in pixels.
    crop_margin: crop side / the box's longer side.
  """

  backbone: nn.Module
  num_classes: int
  num_keypoints: int = 0
  dtype: Any = jnp.float32
  crop_classifier: Any = None
  crop_size: int = 32
  crop_margin: float = 1.3

  @nn.compact
  def __call__(self, images: jax.Array, class_boxes: jax.Array | None = None,
               train: bool = False) -> dict[str, jax.Array]:
    """Images [N, H, W, C] (and for a crop classifier optionally class_boxes [N, 4] normalised xyxy to crop
    instead of the predicted boxes) -> {"logits": [N, classes], "boxes": [N, 4] normalised xyxy, and with
    keypoints "keypoints": [N, K, 2] normalised x, y and "visibility": [N, K] logits}."""
    features = nn.relu(self.backbone(images, train=train))
    boxes = decode_boxes(nn.Dense(4, dtype=self.dtype, name="box_head")(features))
    if self.crop_classifier is None:
      logits = nn.Dense(self.num_classes, dtype=self.dtype, name="class_head")(features)
    else:
      chosen = jax.lax.stop_gradient(boxes if class_boxes is None else class_boxes)
      logits = self.crop_classifier(crop_squares(images, chosen, self.crop_size, self.crop_margin), train=train)
    outputs = {"logits": logits.astype(jnp.float32), "boxes": boxes}
    if self.num_keypoints:
      raw = nn.Dense(3 * self.num_keypoints, dtype=self.dtype, name="keypoint_head")(features).astype(jnp.float32)
      raw = raw.reshape((raw.shape[0], self.num_keypoints, 3))
      outputs["keypoints"] = 0.5 + raw[..., :2]
      outputs["visibility"] = raw[..., 2]
    return outputs


def build(backbone: str, num_classes: int, num_keypoints: int = 0, feature_dim: int = 256,
          backbone_config: Any = None, crop_model: str = "", crop_kwargs: Any = None, crop_size: int = 32,
          crop_margin: float = 1.3, **kwargs: Any) -> LocalizationNet:
  """A `LocalizationNet` on the zoo classifier `backbone`.

  Args:
    backbone: a registered classifier name (e.g. "simple_cnn").
    num_classes: object classes.
    num_keypoints: K (0 for no keypoint head).
    feature_dim: width of the backbone's output, the heads' input.
    backbone_config: a config `model` section (switches such as dropout, batch_norm, kwargs); only its
      switches and kwargs are used, the name is `backbone`.
    crop_model: a registered classifier name for the crop classifier ("" for a linear class head).
    crop_kwargs: its constructor arguments (e.g. widths).
    crop_size, crop_margin: see `LocalizationNet`.
    **kwargs: further constructor arguments of the backbone and crop classifier (e.g. dtype).
  """
  section = dict(backbone_config or {})
  section["name"] = backbone
  trunk = overrides.from_config(section, num_classes=feature_dim, **kwargs)
  classifier = (overrides.build(crop_model, num_classes=num_classes, **dict(crop_kwargs or {}), **kwargs)
                if crop_model else None)
  return LocalizationNet(trunk, num_classes, num_keypoints, dtype=kwargs.get("dtype", jnp.float32),
                         crop_classifier=classifier, crop_size=crop_size, crop_margin=crop_margin)
