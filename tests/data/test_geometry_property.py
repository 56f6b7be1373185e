"""Geometry stays true: a drawn rectangle, its masks, box and keypoints stay on the same pixels through every
geometric op and through letterboxing (boxes and marked pixels recomputed with NumPy from the moved masks)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.data import augment, host_resize
from vision_jax.data.augment import annotations, geometric, warp
from vision_jax.data.features import Feature, object_features

DRAWS, SIZE = 20, 24


def _scenes(n, size, seed):
  """n rectangles: images [n, size, size, 1], packed masks [n, size, size, 2] (semantic, instance), boxes
  [n, 1, 4], keypoints [n, 3, 3] at centres of marked pixels at least 2 pixels inside the rectangle."""
  rng = np.random.default_rng(seed)
  images = np.zeros((n, size, size, 1), np.float32)
  semantic = np.full((n, size, size), 255, np.uint8)
  instance = np.zeros((n, 1, size, size), np.uint8)
  boxes, points = np.zeros((n, 1, 4), np.float32), np.zeros((n, 3, 3), np.float32)
  for i in range(n):
    h, w = rng.integers(6, size // 2, 2)
    y1, x1 = rng.integers(1, size - h), rng.integers(1, size - w)
    images[i, y1:y1 + h, x1:x1 + w] = 1.0
    semantic[i, y1:y1 + h, x1:x1 + w] = 3
    instance[i, 0, y1:y1 + h, x1:x1 + w] = 1
    boxes[i, 0] = (x1, y1, x1 + w, y1 + h)
    for k in range(3):
      points[i, k] = (rng.integers(x1 + 2, x1 + w - 2) + 0.5, rng.integers(y1 + 2, y1 + h - 2) + 0.5, 1)
  masks = annotations.pack_masks(jnp.asarray(semantic), jnp.asarray(instance))
  return jnp.asarray(images), masks, jnp.asarray(boxes), jnp.asarray(points)


def _mask_box(mask):
  rows, cols = np.nonzero(mask)
  return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32)


def _check_geometry(masks, boxes, keypoints, tolerance):
  """Per example: the box of the moved masks equals the moved box, keypoints sit on marked pixels."""
  semantic, instance = (np.asarray(m) for m in annotations.unpack_masks(jnp.asarray(masks), semantic=True))
  for i in range(len(boxes)):
    mask = instance[i, 0]
    np.testing.assert_array_equal(semantic[i] == 3, mask == 1)
    box = np.asarray(boxes[i, 0])
    if not mask.any():  # the rectangle left the image: its box has no area left
      assert (box[2] - box[0]) * (box[3] - box[1]) == 0
      continue
    np.testing.assert_allclose(_mask_box(mask), box, atol=tolerance)
    for x, y, visible in np.asarray(keypoints[i]):
      inside = 0 <= x < mask.shape[1] and 0 <= y < mask.shape[0]
      assert visible == float(inside)
      if inside:
        assert mask[int(np.floor(y)), int(np.floor(x))] == 1, (i, x, y)


# (op, tolerance in pixels): exact copies of pixels keep boxes exact; resampling moves edges by < 1 pixel.
OPS = [("flip_lr", 0), ("flip_ud", 0), ("pad(to=30)", 0), ("pad_crop(pad=6)", 0), ("translate(x=0.4, y=0.4)", 0),
       ("random_resized_crop(scale=(0.3, 1.0), size=20)", 1), ("rotate(degrees=45)", 1), ("shear(x=25, y=20)", 1),
       ("zoom(scale=(0.6, 1.6))", 1), ("affine(degrees=30, shear=(10, 10), scale=(0.8, 1.2), translate=(0.2, 0.2))", 1)]


@pytest.mark.parametrize("spec,tolerance", OPS, ids=[op[0] for op in OPS])
def test_masks_boxes_and_keypoints_move_together(spec, tolerance):
  images, masks, boxes, points = _scenes(DRAWS, SIZE, seed=len(spec))
  out = jax.jit(augment.build(spec).apply)(jax.random.PRNGKey(7), images, boxes=boxes, masks=masks,
                                           keypoints=points)
  assert out.masks.dtype == masks.dtype and out.masks.shape[:3] == out.images.shape[:3]
  _check_geometry(out.masks, out.boxes, out.keypoints, tolerance)
  area = (out.boxes[..., 2] - out.boxes[..., 0]) * (out.boxes[..., 3] - out.boxes[..., 1])
  np.testing.assert_array_equal(np.asarray(out.visible) > 0, np.asarray(area) > 0)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_quarter_turns_move_masks_boxes_and_keypoints_exactly(turns):
  images, masks, boxes, points = _scenes(DRAWS, SIZE, seed=turns)
  forward = geometric.rotation(jnp.full((DRAWS,), turns * np.pi / 2), (SIZE, SIZE))
  out = warp.warp_sample(augment.Sample(images, boxes, None, masks, points, visible=jnp.ones((DRAWS, 1))), forward)
  _check_geometry(out.masks, out.boxes, out.keypoints, 0)
  np.testing.assert_array_equal(np.asarray(out.masks), np.rot90(np.asarray(masks), turns, axes=(1, 2)))


def test_flip_lr_swaps_left_and_right_keypoints():
  images, masks, boxes, points = _scenes(DRAWS, SIZE, seed=3)
  perm = annotations.flip_permutation(3, [(0, 2)])
  np.testing.assert_array_equal(perm, [2, 1, 0])
  images = images.at[:, 0, 0].set(0.5)  # a corner mark: a flipped image differs even for a centred rectangle
  out = augment.build("flip_lr").apply(jax.random.PRNGKey(1), images, keypoints=points, keypoint_flip=perm)
  flipped = [o[0, 0, 0] != 0.5 for o in np.asarray(out.images)]
  assert 0 < sum(flipped) < DRAWS
  for i, was_flipped in enumerate(flipped):
    expected = np.asarray(points[i]).copy()
    if was_flipped:
      expected[:, 0] = SIZE - expected[:, 0]
      expected = expected[[2, 1, 0]]
    np.testing.assert_array_equal(np.asarray(out.keypoints[i]), expected)


def test_letterbox_keeps_masks_boxes_and_keypoints_together():
  rng = np.random.default_rng(11)
  features = {"image": Feature("image", (0, 0, 1), "uint8"), "semantic_mask": Feature("mask", (0, 0), "uint8"),
              "keypoints": Feature("keypoints", (3, 3), "float32"), **object_features(1, 4, mask_shape=(0, 0))}
  for draw in range(DRAWS):
    height, width = rng.integers(10, 40, 2)
    h, w = rng.integers(6, min(height, width) // 2 + 6, 2)
    h, w = min(h, height - 1), min(w, width - 1)
    y1, x1 = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
    instance = np.zeros((1, height, width), np.uint8)
    instance[0, y1:y1 + h, x1:x1 + w] = 1
    points = [(rng.integers(x1 + 2, x1 + w - 2) + 0.5, rng.integers(y1 + 2, y1 + h - 2) + 0.5, 1) for _ in range(3)]
    example = {"image": instance[0, :, :, None] * 255, "semantic_mask": instance[0] * 3, "instance_masks": instance,
               "boxes": np.array([[x1, y1, x1 + w, y1 + h]], np.float32), "box_labels": np.array([2], np.int32),
               "num_objects": np.int32(1), "keypoints": np.array(points, np.float32)}
    out = host_resize.letterbox(example, 32, features)
    masks = annotations.pack_masks(out["semantic_mask"][None], out["instance_masks"][None])
    _check_geometry(masks, out["boxes"][None], out["keypoints"][None], 1)
    assert out["num_objects"] == 1, draw
