"""Metric-learning models: a Siamese embedding network around any zoo backbone, Koch's pair classifier, and the
four-block conv embedding of few-shot learning (`conv4`)."""

from vision_jax.models.embedding.conv4 import Conv4  # noqa: F401  (registers conv4)
from vision_jax.models.embedding.siamese import (NAMES as WRAPPERS, EmbeddingNet, PairClassifier,  # noqa: F401
                                                 siamese_embedding, siamese_pair_classifier)

# Kept out of the zoo-wide classifier tests (models.NOT_IMAGE_CLASSIFIERS): the wrappers take other inputs, and conv4
# (with head=False a feature extractor) is tested in tests/models/test_embedding_models.py.
NAMES = WRAPPERS + ("conv4",)
