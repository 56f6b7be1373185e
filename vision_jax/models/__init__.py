"""Models: pure Flax Linen modules grouped by family, built by name with `get(name, **kwargs)`."""

from vision_jax.models import classifiers  # noqa: F401  (registers the classifier families)
from vision_jax.models.registry import get, names, register, register_factory

__all__ = ["get", "names", "register", "register_factory"]
