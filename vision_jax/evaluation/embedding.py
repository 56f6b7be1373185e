"""Metric-learning evaluation on gathered embeddings: verification, N-way K-shot episodes, gallery recognition.

Everything runs on the host in NumPy float64 from the embeddings and labels of the whole eval split (a
`GatherEvaluator` collects them), so results do not depend on the batch size or the number of processes, and every
random choice (halves, pairs, episodes, enrolments) is drawn from `np.random.default_rng` seeded by the settings.

Scores: higher means "more alike". For distances ('euclidean', 'squared_euclidean', 'cosine' = 1 - cos) the score is
minus the distance; for 'weighted_l1' (Koch's pair classifier) it is the head's logit without its bias,
sum_j w_j |a_j - b_j| (the bias shifts every score equally, so no ranking or chosen threshold depends on it).

  * Verification: the examples are split at random into a validation half and a test half; pairs are every pair
    i < j inside a half (a seeded sample of `max_pairs` when there are more). ROC AUC and TAR at FAR 1e-3 are
    measured on the test half's pairs; the accuracy threshold is the one that maximises accuracy on the validation
    half's pairs, and `verification_accuracy` is the accuracy of that threshold on the test half.
  * Episodes (N-way K-shot): N classes drawn among those with at least K + Q examples, K support and Q query
    examples per class drawn without replacement; each query takes the class of the nearest prototype (the mean of
    its class's K support embeddings; for K = 1 the support example itself). Reported: the mean accuracy over the
    episodes and the half-width of its 95% normal interval, 1.96 * std / sqrt(episodes).
  * Gallery recognition: `enrol` examples of each class with more than `enrol` are enrolled, the rest are probes;
    a probe takes the class of its nearest enrolled example. Mean top-1 accuracy over `gallery_draws` draws.
  * Matching options (`EmbeddingEval.match`): episodes and the gallery can instead match conv maps location by
    location (`local_matching`, inductive: each query against its support set only); the same episode draws serve
    every rule. `holes` adds a topological prior of line drawings to either rule (`hole_prior`), `support_views`
    scores each query against several augmented views of each support (`support_views`); `episode_rules` builds
    the rules. `refine_steps` adds transductive soft k-means results (`transductive`) under separate names.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.errors import ConfigError
from vision_jax.evaluation import embedding_pictures, episode_rules, hole_prior, local_matching
from vision_jax.evaluation.embedding_scores import paired_scores, prototype_class_scores, score_matrix

CONFUSION_CLASSES = 30  # evaluations of more classes (Omniglot's 659 characters, LFW's people) get no confusion matrix
ClassScores = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (query_rows [E, q], support_rows [E, N, K]) -> [E, q, N]
PairScores = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows_a [n], rows_b [m]) -> [n, m]


def join_feature_blocks(blocks: Sequence[jax.Array]) -> jax.Array:
  """Several feature blocks of the same examples ([N, D_i] each, e.g. two layers) as one vector per example: each
  block L2-normalised, concatenated and divided by sqrt(blocks), so the cosine of two joined vectors is the mean of
  the blocks' cosines (every layer weighs the same whatever its size). One block is returned as it is.

  Returns:
    [N, sum D_i] float32.
  """
  if len(blocks) == 1:
    return blocks[0]
  units = [b / jnp.maximum(jnp.linalg.norm(b, axis=1, keepdims=True), 1e-12) for b in blocks]
  return jnp.concatenate(units, axis=1) / np.sqrt(len(blocks))


# --- Verification ---------------------------------------------------------------------------------------------
def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
  """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2.

  Args:
    scores: [P] scores (higher = predicted positive).
    positive: [P] bool labels.

  Returns:
    The AUC; NaN when either class is absent.
  """
  scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
  num_pos, num_neg = int(positive.sum()), int((~positive).sum())
  if num_pos == 0 or num_neg == 0:
    return float("nan")
  order = np.argsort(scores, kind="stable")
  sorted_scores = scores[order]
  ranks = np.empty(len(scores), np.float64)
  # Average 1-based rank of each run of tied scores (Mann-Whitney U with ties).
  starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
  ends = np.r_[starts[1:], len(scores)]
  ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
  u = ranks[positive].sum() - num_pos * (num_pos + 1) / 2.0
  return float(u / (num_pos * num_neg))


def tar_at_far(scores: np.ndarray, positive: np.ndarray, far: float = 1e-3) -> float:
  """True-accept rate at the strictest threshold whose false-accept rate is at most `far`.

  A pair is accepted when its score is above the threshold t; t is the (k+1)-th largest negative score with
  k = floor(far * negatives), so at most k negatives are accepted (ties at t are rejected).

  Returns:
    The fraction of positives accepted; NaN when either class is absent.
  """
  return float(embedding_pictures.roc_curve(scores, positive, np.asarray([far]))[0])  # one point of the ROC


def best_threshold(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
  """The threshold t (accept: score >= t) with the highest accuracy on these pairs, and that accuracy.

  Candidates are every distinct score and +inf (accept nothing); ties in accuracy keep the largest t. The
  returned t is the midpoint between the chosen score and the next lower one, so it generalises to new pairs.
  """
  scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
  if len(scores) == 0:
    return float("nan"), float("nan")
  order = np.argsort(-scores, kind="stable")
  s, y = scores[order], positive[order]
  last_of_run = np.r_[s[1:] != s[:-1], True]  # accepting everything down to the end of a run of ties
  true_pos = np.cumsum(y)[last_of_run]
  false_pos = np.cumsum(~y)[last_of_run]
  correct = np.r_[(~y).sum(), true_pos + ((~y).sum() - false_pos)]  # index 0: accept nothing
  best = int(np.argmax(correct))
  accuracy = correct[best] / len(s)
  if best == 0:
    return float("inf"), float(accuracy)
  chosen = s[last_of_run][best - 1]
  lower = s[last_of_run][best] if best < last_of_run.sum() else chosen - 1.0
  return float((chosen + lower) / 2.0), float(accuracy)


def _pairs_of(indices: np.ndarray, max_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Every pair i < j of `indices`, or `max_pairs` pairs of distinct members drawn at random when there are more."""
  n = len(indices)
  if n * (n - 1) // 2 <= max_pairs:
    i, j = np.triu_indices(n, 1)
  else:
    i = rng.integers(0, n, max_pairs)
    j = (i + rng.integers(1, n, max_pairs)) % n
  return indices[i], indices[j]


def verification_metrics(embeddings: np.ndarray, labels: np.ndarray, metric: str = "euclidean",
                         weights: np.ndarray | None = None, far: float = 1e-3, max_pairs: int = 1_000_000,
                         seed: int = 0, curve_points: int = 0) -> dict[str, Any]:
  """Verification of pairs of examples (module docstring): AUC, accuracy at the validated threshold, TAR@FAR.

  Args:
    embeddings: [N, D]; labels: [N] classes.
    metric, weights: the score (`score_matrix`).
    far: the false-accept rate of `tar_at_far`.
    max_pairs: pairs per half at most.
    seed: seeds the halves and any pair sampling.
    curve_points: > 0 also returns the test half's ROC curve at that many false-accept rates.

  Returns:
    verification_auc, verification_accuracy, verification_threshold, `far_metric_name(far)` (tar_at_far_1e-3);
    with curve_points, roc_far and roc_tar [curve_points] (`embedding_pictures.roc_curve`) and
    roc_threshold_point, the (FAR, TAR) of the accuracy threshold on the test half.
  """
  rng = np.random.default_rng([seed, 1])
  labels = np.asarray(labels).reshape(-1)
  order = rng.permutation(len(labels))
  halves = order[: len(order) // 2], order[len(order) // 2:]
  (vi, vj), (ti, tj) = (_pairs_of(h, max_pairs, rng) for h in halves)
  threshold, _ = best_threshold(paired_scores(embeddings, vi, vj, metric, weights), labels[vi] == labels[vj])
  test_scores, test_same = paired_scores(embeddings, ti, tj, metric, weights), labels[ti] == labels[tj]
  accuracy = float(np.mean((test_scores >= threshold) == test_same)) if len(test_same) else float("nan")
  out = {"verification_auc": roc_auc(test_scores, test_same), "verification_accuracy": accuracy,
         "verification_threshold": threshold, far_metric_name(far): tar_at_far(test_scores, test_same, far)}
  if curve_points > 0:
    out["roc_far"] = embedding_pictures.far_grid(int((~test_same).sum()), curve_points)
    out["roc_tar"] = embedding_pictures.roc_curve(test_scores, test_same, out["roc_far"])
    accepted = test_scores >= threshold
    out["roc_threshold_point"] = np.asarray([np.mean(accepted[~test_same]), np.mean(accepted[test_same])])
  return out


def far_metric_name(far: float) -> str:
  """"tar_at_far_1e-3" for far = 0.001."""
  mantissa, exponent = f"{far:.0e}".split("e")
  return f"tar_at_far_{mantissa}e{int(exponent)}"


# --- Episodes and gallery -------------------------------------------------------------------------------------
def draw_episodes(labels: np.ndarray, ways: int, shots: int, queries: int, episodes: int = 1000,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
  """The rows of `episodes` N-way K-shot episodes (module docstring), the same draws for every matching rule.

  Args:
    labels: [N] classes.
    ways, shots, queries: N, K and Q (queries per class).
    episodes: number of episodes.
    seed: seeds the episodes.

  Returns:
    (query_rows [E, N * Q], support_rows [E, N, K]) int, query j of an episode belonging to its class j // Q; or
    None when fewer than `ways` classes have `shots + queries` examples.
  """
  labels = np.asarray(labels).reshape(-1)
  classes, counts = np.unique(labels, return_counts=True)
  eligible = classes[counts >= shots + queries]
  if len(eligible) < ways or shots < 1 or queries < 1:
    return None
  members = {c: np.flatnonzero(labels == c) for c in eligible}
  rng = np.random.default_rng([seed, 2, ways, shots, queries])
  drawn = np.empty((episodes, ways, shots + queries), np.int64)
  for e in range(episodes):
    chosen = rng.choice(eligible, ways, replace=False)
    drawn[e] = np.stack([rng.choice(members[c], shots + queries, replace=False) for c in chosen])
  return drawn[:, :, shots:].reshape(episodes, ways * queries), drawn[:, :, :shots]


def episode_accuracies(embeddings: np.ndarray, labels: np.ndarray, ways: int, shots: int, queries: int,
                       episodes: int = 1000, metric: str = "euclidean", weights: np.ndarray | None = None,
                       seed: int = 0, class_scores: ClassScores | None = None) -> np.ndarray | None:
  """Accuracy of each of `episodes` N-way K-shot episodes (nearest prototype; module docstring).

  Args:
    embeddings: [N, D]; labels: [N].
    ways, shots, queries: N, K and Q (queries per class).
    episodes: number of episodes.
    metric, weights: the score (`score_matrix`); prototypes are support means in embedding space.
    seed: seeds the episodes.
    class_scores: replaces the nearest prototype: (query_rows [E, q], support_rows [E, N, K]) -> [E, q, N] scores
      of every query against every class of its episode (e.g. `local_matching.episode_class_scores`).

  Returns:
    [episodes] accuracies, or None when fewer than `ways` classes have `shots + queries` examples.
  """
  predictions = episode_predictions(embeddings, labels, ways, shots, queries, episodes, metric, weights, seed,
                                    class_scores)
  return None if predictions is None else _episode_accuracies(predictions[2], queries)


def _episode_accuracies(predicted: np.ndarray, queries: int) -> np.ndarray:
  """[E] accuracies of the class indices [E, N * Q] given to each episode's queries (query j is of class j // Q)."""
  return np.mean(predicted == np.arange(predicted.shape[1]) // queries, 1)


def episode_predictions(embeddings: np.ndarray, labels: np.ndarray, ways: int, shots: int, queries: int,
                        episodes: int = 1000, metric: str = "euclidean", weights: np.ndarray | None = None,
                        seed: int = 0, class_scores: ClassScores | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
  """`episode_accuracies`' episodes and answers: (query_rows [E, N * Q], support_rows [E, N, K], the index of the
  episode class each query is given [E, N * Q]), or None when the episodes cannot be drawn."""
  drawn = draw_episodes(labels, ways, shots, queries, episodes, seed)
  if drawn is None:
    return None
  query_rows, support_rows = drawn
  scores = (class_scores(query_rows, support_rows) if class_scores is not None else
            prototype_class_scores(embeddings, query_rows, support_rows, metric, weights))
  return query_rows, support_rows, np.argmax(scores, -1)


def mean_and_interval(values: np.ndarray) -> tuple[float, float]:
  """Mean and the half-width of its 95% normal interval, 1.96 * std (ddof 1) / sqrt(n)."""
  values = np.asarray(values, np.float64)
  if len(values) < 2:
    return float(np.mean(values)) if len(values) else float("nan"), float("nan")
  return float(values.mean()), float(1.96 * values.std(ddof=1) / np.sqrt(len(values)))


def gallery_accuracy(embeddings: np.ndarray, labels: np.ndarray, enrol: int = 1, draws: int = 10,
                     metric: str = "euclidean", weights: np.ndarray | None = None, seed: int = 0,
                     pair_scores: PairScores | None = None) -> float:
  """Top-1 nearest-neighbour recognition of probes against `enrol` enrolled examples per class (module docstring).

  `pair_scores` (probe_rows [P], gallery_rows [G]) -> [P, G] replaces `score_matrix` of the embeddings (e.g. local
  matching of conv maps).

  Returns:
    Mean accuracy over the draws; NaN when fewer than two classes have more than `enrol` examples.
  """
  labels = np.asarray(labels).reshape(-1)
  classes, counts = np.unique(labels, return_counts=True)
  eligible = classes[counts > enrol]
  if len(eligible) < 2:
    return float("nan")
  rng = np.random.default_rng([seed, 3, enrol])
  accuracies = []
  for _ in range(draws):
    gallery, probes = [], []
    for c in eligible:
      shuffled = rng.permutation(np.flatnonzero(labels == c))
      gallery.append(shuffled[:enrol])
      probes.append(shuffled[enrol:])
    gallery, probes = np.concatenate(gallery), np.concatenate(probes)
    scores = (pair_scores(probes, gallery) if pair_scores is not None else
              score_matrix(embeddings[probes], embeddings[gallery], metric, weights))
    nearest = np.argmax(scores, 1)
    accuracies.append(np.mean(labels[gallery][nearest] == labels[probes]))
  return float(np.mean(accuracies))


# --- Pictures' data -------------------------------------------------------------------------------------------
def pca_2d(embeddings: np.ndarray) -> np.ndarray:
  """The first two principal components of the centred embeddings [N, D] -> [N, 2] (signs fixed: the largest
  absolute loading of each component is positive)."""
  x = np.asarray(embeddings, np.float64)
  x = x - x.mean(0)
  _, _, vt = np.linalg.svd(x, full_matrices=False)
  components = vt[:2]
  signs = np.sign(components[np.arange(len(components)), np.argmax(np.abs(components), 1)])
  points = x @ (components * signs[:, None]).T
  return np.pad(points, ((0, 0), (0, 2 - points.shape[1])))


def hardest_pairs(embeddings: np.ndarray, labels: np.ndarray, count: int = 8, metric: str = "euclidean",
                  weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """The least alike same-class pairs and the most alike different-class pairs, each i < j.

  Returns:
    hard_positive_pairs, hard_negative_pairs int [<=count, 2] (row indices) and hard_positive_scores,
    hard_negative_scores [<=count] float64.
  """
  labels = np.asarray(labels).reshape(-1)
  scores = score_matrix(embeddings, embeddings, metric, weights)
  i, j = np.triu_indices(len(labels), 1)
  pair_scores, same = scores[i, j], labels[i] == labels[j]
  out = {}
  for kind, mask, order in (("positive", same, 1.0), ("negative", ~same, -1.0)):
    candidates = np.flatnonzero(mask)
    picked = candidates[np.argsort(order * pair_scores[candidates], kind="stable")[:count]]
    out[f"hard_{kind}_pairs"] = np.stack([i[picked], j[picked]], 1).astype(np.int64).reshape(-1, 2)
    out[f"hard_{kind}_scores"] = pair_scores[picked]
  return out


# --- The evaluator's settings and finish ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EmbeddingEval:
  """What `embedding_metrics` measures.

  Attributes:
    metric: the score (`embedding_scores.SCORES`).
    classes: labels kept for evaluation (held-out classes); empty: every label.
    episodes: (ways, shots) of each episode setting, e.g. ((5, 1), (20, 1), (5, 5)).
    queries: queries per class in an episode.
    num_episodes: episodes per setting.
    enrol: examples enrolled per class in gallery recognition.
    gallery_draws: enrolment draws averaged.
    far: the false-accept rate of the TAR.
    max_pairs: verification pairs per half at most.
    picture_points: examples in the PCA plot and the hardest-pairs search at most (a seeded subset).
    hardest: pairs of each kind in the hardest-pairs picture.
    seed: seeds every draw.
    match: how episodes and gallery recognition compare examples: prototype (the score of the embeddings,
      nearest support mean) or local (`local_matching`: the rows' `maps` [N, h, w, C] matched location by location
      within +-radius, K shots pooled per location); verification always scores the embeddings.
    radius: the local matching radius in map cells.
    refine_steps: > 0 also reports every episode setting with transductive soft k-means refinement
      (`transductive`, metrics ending in _transductive): of the embeddings, or of the conv maps under match=local;
      0: off.
    refine_temperature: the soft assignments' sharpness.
    holes: > 0 subtracts holes x the L1 distance between `hole_prior.hole_bands` descriptors of the evaluated images
      (the rows' `thumb`) from every episode and gallery score, after either matching rule (a class's descriptor is
      its support mean); 0: off. The transductive results carry it too, in their soft assignments as well;
      verification and the pictures score the features alone.
    hole_descriptor: "binary" (`hole_prior.hole_bands`: a hole in a band or not) or "graded"
      (`hole_prior.graded_hole_bands`: the fraction of ink thresholds and minimum areas under which it is one).
    support_views: V > 1 scores episodes and the gallery against V views of the enrolled side (the plain images and
      V - 1 augmented views, the rows' `view_embedding` / `view_maps`): the best view's prototype, or every view
      pooled like extra shots under match=local (`support_views`); queries and probes as they are; 1: off. The
      transductive results, verification and the pictures use the plain images.
  """

  metric: str = "euclidean"
  classes: tuple[int, ...] = ()
  episodes: tuple[tuple[int, int], ...] = ((5, 1), (20, 1), (5, 5))
  queries: int = 5
  num_episodes: int = 1000
  enrol: int = 1
  gallery_draws: int = 10
  far: float = 1e-3
  max_pairs: int = 1_000_000
  picture_points: int = 1000
  hardest: int = 8
  seed: int = 0
  match: str = "prototype"
  radius: int = 1
  refine_steps: int = 0
  refine_temperature: float = 10.0
  holes: float = 0.0
  hole_descriptor: str = "binary"
  support_views: int = 1

  def __post_init__(self):
    if not self.holes >= 0:  # NaN too
      raise ConfigError(f"embedding.holes={self.holes} is a penalty weight; use >= 0 (0: off)")
    if self.hole_descriptor not in hole_prior.DESCRIPTORS:
      raise ConfigError(f"embedding.hole_descriptor={self.hole_descriptor!r}; use one of "
                        f"{', '.join(hole_prior.DESCRIPTORS)}")
    if self.hole_descriptor != "binary" and self.holes == 0:
      raise ConfigError(f"embedding.hole_descriptor={self.hole_descriptor!r} changes only the hole prior, which "
                        "embedding.holes=0 turns off; set holes > 0 (e.g. 0.15) or leave the descriptor binary")
    if self.support_views < 1:
      raise ConfigError(f"embedding.support_views={self.support_views} counts the plain view too; use >= 1 (1: off)")
    if self.refine_steps < 0 or not self.refine_temperature > 0:
      raise ConfigError(f"embedding.refine_steps={self.refine_steps} must be >= 0 (0: off) and "
                        f"embedding.refine_temperature={self.refine_temperature} > 0")
    if min(self.queries, self.num_episodes, self.enrol, self.gallery_draws) < 1:
      raise ConfigError(f"embedding.queries={self.queries}, num_episodes={self.num_episodes}, enrol={self.enrol} and "
                        f"gallery_draws={self.gallery_draws} must each be at least 1")
    if not 0 < self.far < 1:
      raise ConfigError(f"embedding.far={self.far} is a false accept rate; use a value between 0 and 1, e.g. 1e-3")


def embedding_metrics(rows: Mapping[str, np.ndarray], settings: EmbeddingEval) -> dict[str, Any]:
  """Every metric of the module from gathered rows, plus the pictures' arrays.

  Args:
    rows: `embedding` [N, D], `label` [N] and optionally `thumb` [N, h, w, C] (images for the hardest-pairs
      picture), `pair_weights` [N, D] (the pair head's weights, the same in every row, for 'weighted_l1') and, for
      match=local, `maps` [N, h, w, C].
    settings: what to measure.

  Returns:
    Scalars: num_examples, num_classes and every name of `metric_names` (the verification metrics,
    episodes_<N>way_<K>shot and its _ci95, gallery_top1_enrol<k>), NaN where the examples cannot give it (fewer
    than `ways` classes with enough examples, fewer than 4 examples). Arrays: pca_points [M, 2],
    pca_labels [M], hard_positive_pairs/scores, hard_negative_pairs/scores (indices into the picture subset),
    roc_far / roc_tar [200] (the verification ROC) and roc_threshold_point (its accuracy threshold's FAR, TAR),
    evaluated_classes [C] and, for the first episode setting, episode_setting (ways, shots), episode_confusion
    [C, C] (`embedding_pictures`; up to CONFUSION_CLASSES classes) and the first episodes' episode_support_rows /
    episode_query_rows / episode_query_given [3, N]; with thumbnails, picture_thumbs [M, h, w, C],
    episode_support_thumbs / episode_query_thumbs [3, N, h, w, C] and their labels.
  """
  embeddings = np.asarray(rows["embedding"], np.float64)
  labels = np.asarray(rows["label"]).reshape(-1).astype(np.int64)
  keep = np.isin(labels, settings.classes) if settings.classes else np.ones(len(labels), bool)
  embeddings, labels = embeddings[keep], labels[keep]
  weights = rows["pair_weights"][0] if "pair_weights" in rows and len(rows["pair_weights"]) else None
  score = dict(metric=settings.metric, weights=weights)
  local_matching.check_match(settings.match, settings.radius)
  maps = episode_rules.gathered_maps(rows, keep, settings.match)
  descriptors = episode_rules.hole_descriptors(rows, keep, settings.holes, settings.hole_descriptor)
  class_scores, pair_scores = episode_rules.inductive_rules(rows, keep, embeddings, maps, descriptors, settings,
                                                            weights)
  refined_scores = episode_rules.transductive_rule(embeddings, maps, descriptors, settings)
  out: dict[str, Any] = {"num_examples": int(len(labels)), "num_classes": int(len(np.unique(labels)))}
  out.update({name: float("nan") for name in metric_names(settings)})  # what the data cannot give stays NaN
  if len(labels) < 4:
    return out
  out.update(verification_metrics(embeddings, labels, far=settings.far, max_pairs=settings.max_pairs,
                                  seed=settings.seed, curve_points=200, **score))
  for setting, (ways, shots) in enumerate(settings.episodes):
    predictions = episode_predictions(embeddings, labels, ways, shots, settings.queries, settings.num_episodes,
                                      seed=settings.seed, class_scores=class_scores)
    accuracies = None
    if predictions is not None:
      accuracies = _episode_accuracies(predictions[2], settings.queries)
      name = f"episodes_{ways}way_{shots}shot"
      out[name], out[name + "_ci95"] = mean_and_interval(accuracies)
    if predictions is not None and setting == 0:  # the pictures show the first setting
      out["episode_setting"] = np.asarray([ways, shots])
      out.update(embedding_pictures.episode_examples(labels, *predictions, settings.queries))
      if len(np.unique(labels)) <= CONFUSION_CLASSES:
        out["episode_confusion"] = embedding_pictures.episode_confusion(labels, *predictions, np.unique(labels))
    if accuracies is not None and settings.refine_steps > 0:
      refined = episode_accuracies(embeddings, labels, ways, shots, settings.queries, settings.num_episodes,
                                   seed=settings.seed, class_scores=refined_scores)
      name = f"episodes_{ways}way_{shots}shot_transductive"
      out[name], out[name + "_ci95"] = mean_and_interval(refined)
  out[f"gallery_top1_enrol{settings.enrol}"] = gallery_accuracy(embeddings, labels, settings.enrol,
                                                                settings.gallery_draws, seed=settings.seed,
                                                                pair_scores=pair_scores)
  rng = np.random.default_rng([settings.seed, 4])
  subset = np.sort(rng.permutation(len(labels))[:settings.picture_points])
  out["pca_points"], out["pca_labels"] = pca_2d(embeddings[subset]), labels[subset]
  out.update(hardest_pairs(embeddings[subset], labels[subset], settings.hardest, **score))
  if "thumb" in rows:
    thumbs = np.asarray(rows["thumb"])[keep]
    out["picture_thumbs"] = thumbs[subset]
    if "episode_support_rows" in out:
      out["episode_support_thumbs"] = thumbs[out["episode_support_rows"]]
      out["episode_query_thumbs"] = thumbs[out["episode_query_rows"]]
      out["episode_support_labels"] = labels[out["episode_support_rows"]]
      out["episode_query_labels"] = labels[out["episode_query_rows"]]
  out["evaluated_classes"] = np.unique(labels)
  return out


def parse_episodes(text: str) -> tuple[tuple[int, int], ...]:
  """"5x1,20x1,5x5" -> ((5, 1), (20, 1), (5, 5)) (ways x shots)."""
  settings = []
  for item in (t.strip() for t in str(text).split(",")):
    if not item:
      continue
    ways, sep, shots = item.partition("x")
    if not (sep and ways.isdigit() and shots.isdigit() and int(ways) >= 2 and int(shots) >= 1):
      raise ConfigError(f"episode setting {item!r} is not WAYSxSHOTS with ways >= 2 and shots >= 1; write e.g. "
                        "'5x1,20x1,5x5'")
    settings.append((int(ways), int(shots)))
  return tuple(settings)


def parse_classes(text: str) -> tuple[int, ...]:
  """"5,6,7" -> (5, 6, 7); "" -> ()."""
  try:
    return tuple(int(c) for c in str(text).replace(" ", "").split(",") if c)
  except ValueError:
    raise ConfigError(f"{text!r} is not a comma list of class labels; write e.g. '5,6,7,8,9'") from None


def metric_names(settings: EmbeddingEval) -> Sequence[str]:
  """The scalar metrics `embedding_metrics` reports besides num_examples and num_classes."""
  names = ["verification_auc", "verification_accuracy", "verification_threshold", far_metric_name(settings.far)]
  for ways, shots in settings.episodes:
    names += [f"episodes_{ways}way_{shots}shot", f"episodes_{ways}way_{shots}shot_ci95"]
    if settings.refine_steps > 0:
      names += [f"episodes_{ways}way_{shots}shot_transductive", f"episodes_{ways}way_{shots}shot_transductive_ci95"]
  return names + [f"gallery_top1_enrol{settings.enrol}"]
