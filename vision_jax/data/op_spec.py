"""Moved to `vision_jax.augment.spec`; re-exported for existing imports."""

from vision_jax.augment.spec import parse_op, parse_pipeline  # noqa: F401
