"""Image ops registered by name; the implementation lives in `vision_jax.augment`, re-exported here so that
`from vision_jax.data import augment; augment.build("to_float|flip_lr")` keeps working."""

from vision_jax.augment import Op, Pipeline, Sample, build, names, pixel_op, register, rotate_images  # noqa: F401
