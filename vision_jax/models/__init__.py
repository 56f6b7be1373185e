"""Models: pure Flax Linen modules grouped by family, built by name with `get(name, **kwargs)`."""

from vision_jax.models import classifiers  # noqa: F401  (registers the classifier families)
from vision_jax.models.registry import get, names, register, register_factory
from vision_jax.models.summary import count_params, layer_table, summary

__all__ = ["count_params", "get", "layer_table", "names", "register", "register_factory", "summary"]
