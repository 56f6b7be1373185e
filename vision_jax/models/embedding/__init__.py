"""Metric-learning models: a Siamese embedding network around any zoo backbone, and Koch's pair classifier."""

from vision_jax.models.embedding.siamese import (NAMES, EmbeddingNet, PairClassifier,  # noqa: F401
                                                 siamese_embedding, siamese_pair_classifier)
