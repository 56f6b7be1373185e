"""The scoring rules of one-shot episodes and gallery recognition, built from the gathered rows and the settings.

The inductive rule (`inductive_rules`) scores each query against its support set alone: the nearest prototype of
the embeddings, or local matching of conv maps (`local_matching`), optionally over several augmented views of each
support (`support_views`), then optionally minus the hole prior's penalty (`hole_prior`). The transductive
rule (`transductive_rule`, reported apart) refines the prototypes with the episode's unlabelled queries.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax.numpy as jnp
import numpy as np

from vision_jax.errors import ConfigError
from vision_jax.evaluation import hole_prior, local_matching, support_views, transductive
from vision_jax.evaluation.embedding_scores import prototype_class_scores, score_matrix

ClassScores = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (query_rows [E, q], support_rows [E, N, K]) -> [E, q, N]
PairScores = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows_a [n], rows_b [m]) -> [n, m]


def gathered_maps(rows: Mapping[str, np.ndarray], keep: np.ndarray, match: str) -> np.ndarray | None:
  """The kept rows' conv maps [N, h, w, C] under match=local, else None."""
  if match != "local":
    return None
  if "maps" not in rows:
    raise ConfigError("embedding.match=local needs the conv maps of every example (`maps`); use an embedding network, "
                      "not the pair classifier")
  return np.asarray(rows["maps"])[keep]


def hole_descriptors(rows: Mapping[str, np.ndarray], keep: np.ndarray, holes: float,
                     kind: str = "binary") -> np.ndarray | None:
  """The kept rows' hole descriptors [N, 2] when `holes` > 0, else None: `hole_prior.hole_bands` (kind "binary")
  or `hole_prior.graded_hole_bands` ("graded")."""
  if holes <= 0:
    return None
  if "thumb" not in rows:
    raise ConfigError("embedding.holes needs the evaluated images (the rows' `thumb`); set it to 0")
  return hole_prior.DESCRIPTORS[kind](np.asarray(rows["thumb"])[keep])


def inductive_rules(rows: Mapping[str, np.ndarray], keep: np.ndarray, embeddings: np.ndarray,
                    maps: np.ndarray | None, descriptors: np.ndarray | None, settings: Any,
                    weights: np.ndarray | None = None) -> tuple[ClassScores, PairScores]:
  """The episode and gallery scores of the settings' inductive rule (module docstring), over kept-row indices.

  Args:
    rows: the gathered rows (`evaluation.embedding.embedding_metrics`); with settings.support_views = V > 1 they also
      hold `view_embedding` [R, V - 1, D] and, under match=local, `view_maps` [R, V - 1, h, w, C].
    keep: [R] bool, the evaluated rows.
    embeddings: [N, D] float64 embeddings of the kept rows.
    maps: the kept rows' conv maps [N, h, w, C] under match=local (`gathered_maps`), else None.
    descriptors: the kept rows' hole descriptors when settings.holes > 0 (`hole_descriptors`), else None.
    settings: an `EmbeddingEval`.
    weights: the pair head's weights for the 'weighted_l1' score.

  Returns:
    (class_scores, pair_scores): (query_rows [E, q], support_rows [E, W, K]) -> [E, q, W] and
    (rows_a [n], rows_b [m]) -> [n, m].
  """
  views = int(settings.support_views)
  if views > 1:  # every image's plain row followed by its augmented views: row i * V + v
    names = ["view_embedding"] + (["view_maps"] if maps is not None else [])
    if any(name not in rows for name in names):
      raise ConfigError(f"embedding.support_views={views} needs the augmented views of every example "
                        f"({', '.join(names)}); evaluate with the embedding task or set support_views=1")
    embeddings = support_views.interleave(embeddings, np.asarray(rows["view_embedding"], np.float64)[keep])
    maps = None if maps is None else support_views.interleave(maps, np.asarray(rows["view_maps"])[keep])
  if maps is not None:
    maps = jnp.asarray(maps, jnp.float32)  # once: every call of the local rule would copy the host array again
    radius = settings.radius
    if views > 1:  # each support's views pooled like extra shots, location by location
      def class_scores(q, s):
        shots = support_views.view_rows(s, views)  # [E, W, K, V]
        return local_matching.episode_class_scores(maps, q * views, shots.reshape(shots.shape[:2] + (-1,)), radius)
      pair_scores = lambda a, b: local_matching.pooled_score_matrix(maps[a * views], maps[support_views.view_rows(
          b, views)], radius)
    else:
      class_scores = functools.partial(local_matching.episode_class_scores, maps, radius=radius)
      pair_scores = lambda a, b: local_matching.local_score_matrix(maps[a], maps[b], radius)
  else:
    score = dict(metric=settings.metric, weights=weights)
    class_scores = functools.partial(prototype_class_scores, embeddings, **score)
    pair_scores = lambda a, b: score_matrix(embeddings[a], embeddings[b], **score)
    if views > 1:  # the best view's prototype
      class_scores = support_views.best_view_class_scores(class_scores, views)
      pair_scores = support_views.best_view_pair_scores(pair_scores, views)
  if descriptors is not None:  # on image indices: a view keeps its image's holes
    class_scores, pair_scores = hole_prior.with_hole_penalty(class_scores, pair_scores, descriptors, settings.holes)
  return class_scores, pair_scores


def transductive_rule(embeddings: np.ndarray, maps: np.ndarray | None, descriptors: np.ndarray | None,
                      settings: Any) -> ClassScores:
  """The `_transductive` episode scores: soft k-means of the embeddings (cosine), or of the conv `maps` under local
  matching, with the hole prior's penalty in every score when `descriptors` are given (the plain images only)."""

  def class_scores(query_rows: np.ndarray, support_rows: np.ndarray) -> np.ndarray:
    offsets = (None if descriptors is None else
               -settings.holes * hole_prior.hole_mismatch(descriptors, query_rows, support_rows))
    refine = dict(steps=settings.refine_steps, temperature=settings.refine_temperature, offsets=offsets)
    if maps is not None:
      return transductive.soft_kmeans_local_scores(maps, query_rows, support_rows, settings.radius, **refine)
    return transductive.soft_kmeans_class_scores(embeddings, query_rows, support_rows, **refine)
  return class_scores
