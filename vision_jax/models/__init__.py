"""Models: pure Flax Linen modules grouped by family, built by name with `get(name, **kwargs)`."""

from vision_jax.models import classifiers  # noqa: F401  (registers the classifier families)
from vision_jax.models import conv_nd, siamese_heads  # noqa: F401  (1D/3D CNNs, the two-input multi-head model)
from vision_jax.models import embedding  # noqa: F401  (Siamese embedding and pair-classifier models)
from vision_jax.models import segmentation  # noqa: F401  (FCN, U-Net: per-pixel logits)
from vision_jax.models.detectors import rcnn  # noqa: F401  (Faster/Mask R-CNN with ResNet-FPN backbones)
from vision_jax.models.registry import get, names, register, register_factory
from vision_jax.models.summary import count_params, layer_table, summary

# Registered models that do not map one image [N, H, W, C] to logits [N, K] (other input ranks, several inputs).
NOT_IMAGE_CLASSIFIERS = conv_nd.NAMES + siamese_heads.NAMES + embedding.NAMES + segmentation.NAMES + rcnn.NAMES

__all__ = ["NOT_IMAGE_CLASSIFIERS", "count_params", "get", "layer_table", "names", "register", "register_factory",
           "summary"]
