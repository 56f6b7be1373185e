"""Classifier families; importing this package registers each of them."""

from vision_jax.models.classifiers import lenet  # noqa: F401
