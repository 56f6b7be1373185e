"""Annotations in augmentation: packed masks, invalid boxes by visible fraction, refusals and shape errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.data import augment
from vision_jax.data.augment import annotations, geometric, registry, warp
from vision_jax.errors import ConfigError, DataError

KEY = jax.random.PRNGKey(0)


def test_pack_and_unpack_masks_round_trip_with_ignore_as_zero():
  semantic = np.array([[[0, 4], [255, 254]]], np.uint8)
  instance = np.array([[[[1, 0], [0, 1]], [[0, 1], [1, 0]]]], np.uint8)
  packed = np.asarray(annotations.pack_masks(semantic, instance))
  assert packed.shape == (1, 2, 2, 3) and packed.dtype == np.uint8
  np.testing.assert_array_equal(packed[0, :, :, 0], [[1, 5], [0, 255]])
  back_semantic, back_instance = annotations.unpack_masks(jnp.asarray(packed), semantic=True)
  np.testing.assert_array_equal(back_semantic, semantic)
  np.testing.assert_array_equal(back_instance, instance)
  assert annotations.unpack_masks(jnp.asarray(packed[..., 1:]), semantic=False)[0] is None


def test_boxes_below_min_visible_are_zeroed_hand_worked():
  # Shifting (2, 2, 6, 5) by (+5, -3) in an 8x8 image: (7, -1, 11, 2), clipped (7, 0, 8, 2), 2 of 12 pixels left.
  shift = lambda rng, sample: warp.move_annotations(
      sample, geometric.translation(jnp.array([5.0]), jnp.array([-3.0])), (8, 8))
  boxes = jnp.array([[[2.0, 2.0, 6.0, 5.0], [0.0, 4.0, 2.0, 6.0], [0.0, 0.0, 0.0, 0.0]]])
  images = jnp.zeros((1, 8, 8, 1))
  strict = registry.Pipeline("shift", [("shift", shift)], min_visible=0.25).apply(KEY, images, boxes=boxes)
  np.testing.assert_allclose(strict.boxes[0], [[0, 0, 0, 0], [5, 1, 7, 3], [0, 0, 0, 0]])
  np.testing.assert_allclose(strict.visible[0], [0, 1, 0])
  lenient = registry.Pipeline("shift", [("shift", shift)], min_visible=0.1).apply(KEY, images, boxes=boxes)
  np.testing.assert_allclose(lenient.boxes[0, 0], [7, 0, 8, 2])
  np.testing.assert_allclose(lenient.visible[0], [2 / 12, 1, 0], rtol=1e-6)


def test_colour_ops_leave_geometry_alone():
  images = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 6, 6, 3)), jnp.float32)
  boxes = jnp.array([[[1.0, 1.0, 4.0, 5.0]], [[0.0, 2.0, 3.0, 3.0]]])
  masks = jnp.ones((2, 6, 6, 1), jnp.uint8)
  points = jnp.array([[[1.5, 2.5, 1.0]], [[3.5, 0.5, 1.0]]])
  out = augment.build("brightness|contrast|saturation|hue|cutout(size=2)").apply(KEY, images, boxes=boxes,
                                                                                   masks=masks, keypoints=points)
  for moved, given in ((out.boxes, boxes), (out.masks, masks), (out.keypoints, points)):
    np.testing.assert_array_equal(moved, given)


def test_mixing_refuses_masks_and_bad_annotation_shapes_are_user_errors():
  images, targets = jnp.zeros((2, 4, 4, 1)), jnp.eye(2)
  with pytest.raises(DataError, match="cannot carry masks"):
    augment.build("mixup").apply(KEY, images, targets=targets, masks=jnp.zeros((2, 4, 4, 1), jnp.uint8))
  with pytest.raises(DataError, match=r"masks must be integer \[N, H, W, K\]"):
    augment.build("flip_lr").apply(KEY, images, masks=jnp.zeros((2, 4, 4, 1)))
  with pytest.raises(DataError, match=r"keypoints must be \[N, K, 3\]"):
    augment.build("flip_lr").apply(KEY, images, keypoints=jnp.zeros((2, 3, 2)))
  with pytest.raises(DataError, match="keypoint_flip must be a permutation"):
    augment.build("flip_lr").apply(KEY, images, keypoints=jnp.zeros((2, 3, 3)), keypoint_flip=np.arange(2))
  with pytest.raises(DataError, match="at most once"):
    annotations.flip_permutation(3, [(0, 1), (1, 2)])
  with pytest.raises(ConfigError, match="min_visible"):
    augment.build("flip_lr", min_visible=1.5)
