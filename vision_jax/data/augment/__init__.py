"""Augmentation and preprocessing ops on image batches, registered by name and chained by config strings.

    >>> from vision_jax.data import augment
    >>> pipeline = augment.build("to_float|random_resized_crop(scale=(0.25, 1.0))|flip_lr|brightness(factor=0.3)")
    >>> images = pipeline(jax.random.PRNGKey(0), uint8_images)                        # [N, H, W, C] -> [N, H, W, C]
    >>> out = pipeline.apply(jax.random.PRNGKey(0), uint8_images, boxes=boxes)       # boxes [N, M, 4] move too
    >>> out = pipeline.apply(key, images, boxes=boxes, masks=annotations.pack_masks(semantic, instance),
    ...                      keypoints=keypoints, keypoint_flip=annotations.flip_permutation(K, flip_pairs))

Every op is pure, jit-able, draws its randomness per example from the key it is given, and keeps shapes static.
Modules: `registry` (Sample, Pipeline, register, build), `warp` (affine sampling of images and masks, moving
boxes and keypoints), `annotations` (masks packed as channels, keypoint flip permutations), `geometric`,
`color`, `mixing`, `deform` (elastic distortion, stroke thickness).
"""

from vision_jax.data.augment import annotations, color, deform, geometric, mixing  # noqa: F401  (importing registers the ops)
from vision_jax.data.augment.geometric import rotate_images
from vision_jax.data.augment.registry import Op, Pipeline, Sample, build, names, pixel_op, register

__all__ = ["Op", "Pipeline", "Sample", "build", "names", "pixel_op", "register", "rotate_images", "annotations",
           "color", "deform", "geometric", "mixing"]
