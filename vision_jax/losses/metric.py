"""Metric-learning losses: pairwise distances, the contrastive loss and triplet losses with online mining inside the
batch (batch-all, batch-hard, semi-hard, soft margin), the prototypical loss of episodes made inside the batch, and
NT-Xent / SupCon (instance discrimination between augmented views, or its supervised form).

Every function works on static shapes: mining builds [N, N] pair masks and [N, N, N] triplet masks and selects with
`jnp.where`, so the losses jit once per batch size. An optional `example_mask` [N] marks the real rows of a padded
batch; masked-out rows take part in no pair or triplet.

References:
  Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006 (contrastive).
  Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015 (triplet loss, semi-hard negatives).
  Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person Re-Identification", 2017 (batch-all, batch-hard,
  soft margin).
  TensorFlow Addons `tfa.losses.triplet_semihard_loss` (the semi-hard semantics reproduced here).
  Snell, Swersky, Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017 (the prototypical loss).
  Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020
  (NT-Xent); Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020 (SupCon).
  pytorch-metric-learning `TripletMarginLoss`, `ContrastiveLoss`, `AvgNonZeroReducer` (the 'mean_positive' and
  'nonzero_mean_per_kind' reductions).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError

Metric = Literal['euclidean', 'squared_euclidean', 'cosine']
METRICS = ('euclidean', 'squared_euclidean', 'cosine')


def safe_sqrt(x: jax.Array, eps: float = 1e-16) -> jax.Array:
  """sqrt(x) for x >= 0 whose gradient is 0 (not inf/NaN) where x <= eps, e.g. at zero distance.

  Args:
    x: [...] non-negative values (squared distances).
    eps: values at or below it give 0 and a zero gradient.

  Returns:
    [...] square roots.
  """
  positive = x > eps
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def l2_normalize(embeddings: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Rows scaled to unit L2 norm; rows with norm below `eps` are divided by `eps` instead (no NaN at zero).

  Args:
    embeddings: [N, D].

  Returns:
    [N, D] float32.
  """
  embeddings = embeddings.astype(jnp.float32)
  squared_norm = jnp.sum(jnp.square(embeddings), axis=-1, keepdims=True)
  return embeddings * jax.lax.rsqrt(jnp.maximum(squared_norm, eps * eps))


def pairwise_distances(embeddings: jax.Array, other: jax.Array | None = None, metric: Metric = 'euclidean',
                       normalize: bool = False) -> jax.Array:
  """Distances between every row of `embeddings` and every row of `other` (default: `embeddings` itself).

  Args:
    embeddings: [N, D].
    other: [M, D], or None for the [N, N] self-distances (whose diagonal is then exactly 0).
    metric: 'euclidean' ||a - b||, 'squared_euclidean' ||a - b||^2 or 'cosine' 1 - cos(a, b) (clipped to [0, 2]).
    normalize: L2-normalise both sets of rows first.

  Returns:
    [N, M] float32 distances.
  """
  _check_metric(metric)
  a = embeddings.astype(jnp.float32)
  b = a if other is None else other.astype(jnp.float32)
  if normalize or metric == 'cosine':
    a, b = l2_normalize(a), l2_normalize(b)
  gram = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  if metric == 'cosine':
    distances = jnp.clip(1.0 - gram, 0.0, 2.0)
  else:
    squared = jnp.sum(jnp.square(a), -1)[:, None] + jnp.sum(jnp.square(b), -1)[None, :] - 2.0 * gram
    distances = jnp.maximum(squared, 0.0)
  if other is None:  # exact zeros on the diagonal: the Gram form leaves rounding residue there
    distances = jnp.where(jnp.eye(a.shape[0], dtype=bool), 0.0, distances)
  return safe_sqrt(distances) if metric == 'euclidean' else distances


def paired_distances(a: jax.Array, b: jax.Array, metric: Metric = 'euclidean', normalize: bool = False) -> jax.Array:
  """Distance between row i of `a` and row i of `b`.

  Args:
    a, b: [P, D].
    metric, normalize: as in `pairwise_distances`.

  Returns:
    [P] float32 distances.
  """
  _check_metric(metric)
  a, b = a.astype(jnp.float32), b.astype(jnp.float32)
  if normalize or metric == 'cosine':
    a, b = l2_normalize(a), l2_normalize(b)
  if metric == 'cosine':
    return jnp.clip(1.0 - jnp.sum(a * b, -1), 0.0, 2.0)
  squared = jnp.sum(jnp.square(a - b), -1)
  return safe_sqrt(squared) if metric == 'euclidean' else squared


def contrastive_pair_losses(distances: jax.Array, similar: jax.Array, margin: float = 1.0, squared: bool = True,
                            halve: bool = False) -> jax.Array:
  """Contrastive loss per pair (Hadsell et al. 2006).

  Label convention: `similar` = 1 (True) for a pair of the same class, 0 for different classes. Per pair
  loss = y * d^p + (1 - y) * max(0, margin - d)^p with p = 2 when `squared` (the paper's form) and p = 1 otherwise
  (pytorch-metric-learning's ContrastiveLoss with pos_margin 0, neg_margin = margin). `halve` multiplies by 1/2 as in
  the paper.

  Args:
    distances: [P] pair distances d.
    similar: [P] bool or 0/1.
    margin: m, the distance beyond which dissimilar pairs cost nothing.

  Returns:
    [P] float32 losses.
  """
  d = distances.astype(jnp.float32)
  y = similar.astype(jnp.float32)
  hinge = jnp.maximum(margin - d, 0.0)
  losses = y * jnp.square(d) + (1.0 - y) * jnp.square(hinge) if squared else y * d + (1.0 - y) * hinge
  return 0.5 * losses if halve else losses


def contrastive_loss(a: jax.Array, b: jax.Array, similar: jax.Array, margin: float = 1.0, metric: Metric = 'euclidean',
                     squared: bool = True, normalize: bool = False, halve: bool = False,
                     pair_mask: jax.Array | None = None) -> jax.Array:
  """Mean contrastive loss over explicit pairs (a[i], b[i]) (Siamese training on pairs).

  Args:
    a, b: [P, D] embeddings of the two sides.
    similar: [P] 1 for same-class pairs, 0 otherwise (see `contrastive_pair_losses`).
    margin, squared, halve: as in `contrastive_pair_losses`.
    metric, normalize: as in `pairwise_distances`.
    pair_mask: [P] bool, the real pairs of a padded batch (default all).

  Returns:
    [] mean over real pairs; 0 when there is none.
  """
  losses = contrastive_pair_losses(paired_distances(a, b, metric, normalize), similar, margin, squared, halve)
  mask = jnp.ones(losses.shape, bool) if pair_mask is None else pair_mask.astype(bool)
  return _masked_mean(losses, mask)


def pair_masks(labels: jax.Array, example_mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Positive and negative pair masks of a labelled batch.

  Args:
    labels: [N] integer classes.
    example_mask: [N] bool, the real rows (default all).

  Returns:
    positive [N, N] (i != j, same label) and negative [N, N] (different labels), both bool and both False for any
    masked-out row or column.
  """
  n = labels.shape[0]
  real = jnp.ones((n,), bool) if example_mask is None else example_mask.astype(bool)
  both_real = real[:, None] & real[None, :]
  same = labels[:, None] == labels[None, :]
  positive = same & ~jnp.eye(n, dtype=bool) & both_real
  negative = ~same & both_real
  return positive, negative


def triplet_mask(labels: jax.Array, example_mask: jax.Array | None = None) -> jax.Array:
  """Valid triplets (anchor a, positive p, negative n): a != p, label[a] == label[p], label[a] != label[n].

  Distinctness of n from a and p follows from the label conditions.

  Args:
    labels: [N]; example_mask: [N] bool (default all real).

  Returns:
    [N, N, N] bool indexed [a, p, n].
  """
  positive, negative = pair_masks(labels, example_mask)
  return positive[:, :, None] & negative[:, None, :]


def batch_contrastive_loss(embeddings: jax.Array, labels: jax.Array, margin: float = 1.0,
                           metric: Metric = 'euclidean', squared: bool = True, normalize: bool = False,
                           halve: bool = False, reduction: Literal['mean', 'nonzero_mean_per_kind'] = 'mean',
                           example_mask: jax.Array | None = None) -> jax.Array:
  """Contrastive loss over all ordered pairs (i, j), i != j, of a labelled batch.

  Args:
    embeddings: [N, D]; labels: [N].
    margin, squared, halve: as in `contrastive_pair_losses`; metric, normalize: as in `pairwise_distances`.
    reduction: 'mean' over all pairs, or 'nonzero_mean_per_kind': the mean of the positive-pair losses that are > 0
      plus the mean of the negative-pair losses that are > 0 (pytorch-metric-learning's ContrastiveLoss with its
      default AvgNonZeroReducer).
    example_mask: [N] bool, the real rows (default all).

  Returns:
    [] loss; 0 when the batch has no pair.
  """
  positive, negative = pair_masks(labels, example_mask)
  distances = pairwise_distances(embeddings, metric=metric, normalize=normalize)
  losses = contrastive_pair_losses(distances, positive, margin, squared, halve)
  if reduction == 'mean':
    return _masked_mean(losses, positive | negative)
  if reduction == 'nonzero_mean_per_kind':
    return _masked_mean(losses, positive & (losses > 0)) + _masked_mean(losses, negative & (losses > 0))
  raise ConfigError(f'unknown reduction {reduction!r}; use mean or nonzero_mean_per_kind')


def batch_all_triplet_loss(embeddings: jax.Array, labels: jax.Array, margin: float = 1.0,
                           metric: Metric = 'euclidean', normalize: bool = False, soft: bool = False,
                           reduction: Literal['mean_positive', 'mean'] = 'mean_positive',
                           example_mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Triplet loss over every valid triplet of the batch (batch-all, Hermans et al. 2017).

  Per triplet: max(0, d_ap - d_an + margin), or log(1 + exp(d_ap - d_an)) when `soft` (margin unused).

  Args:
    embeddings: [N, D]; labels: [N].
    margin: the required gap between negative and positive distances.
    metric, normalize: as in `pairwise_distances`.
    soft: the soft-margin form.
    reduction: 'mean_positive' averages over triplets with loss > 0 (Hermans et al.; pytorch-metric-learning's
      AvgNonZeroReducer with TripletMarginMiner(type_of_triplets='all')); 'mean' over all valid triplets.
    example_mask: [N] bool, the real rows (default all).

  Returns:
    loss [] (0 when no triplet counts) and the fraction [] of valid triplets whose loss is > 0 (with `soft`: whose
    d_ap - d_an + margin is > 0).
  """
  distances = pairwise_distances(embeddings, metric=metric, normalize=normalize)
  valid = triplet_mask(labels, example_mask)
  violation = distances[:, :, None] - distances[:, None, :]
  losses = jax.nn.softplus(violation) if soft else jnp.maximum(violation + margin, 0.0)
  active = valid & (violation + margin > 0)
  fraction = jnp.sum(active) / jnp.maximum(jnp.sum(valid), 1)
  return _reduce(losses, valid, reduction), fraction


def batch_hard_triplet_loss(embeddings: jax.Array, labels: jax.Array, margin: float = 1.0,
                            metric: Metric = 'euclidean', normalize: bool = False, soft: bool = False,
                            reduction: Literal['mean', 'mean_positive'] = 'mean',
                            example_mask: jax.Array | None = None) -> jax.Array:
  """Triplet loss with the hardest positive (farthest) and hardest negative (closest) per anchor (Hermans et al.).

  Anchors without a positive or without a negative in the batch are left out.

  Args:
    embeddings: [N, D]; labels: [N].
    margin, metric, normalize, soft: as in `batch_all_triplet_loss`.
    reduction: 'mean' over the usable anchors (Hermans et al.) or 'mean_positive' over anchors with loss > 0
      (pytorch-metric-learning's BatchHardMiner + TripletMarginLoss with its default AvgNonZeroReducer).
    example_mask: [N] bool, the real rows (default all).

  Returns:
    [] loss; 0 when no anchor is usable.
  """
  distances = pairwise_distances(embeddings, metric=metric, normalize=normalize)
  positive, negative = pair_masks(labels, example_mask)
  usable = jnp.any(positive, 1) & jnp.any(negative, 1)
  hardest_positive = jnp.max(jnp.where(positive, distances, 0.0), 1)  # distances are >= 0
  hardest_negative = jnp.min(jnp.where(negative, distances, jnp.inf), 1)
  violation = jnp.where(usable, hardest_positive - hardest_negative, 0.0)
  losses = jax.nn.softplus(violation) if soft else jnp.maximum(violation + margin, 0.0)
  return _reduce(losses, usable, reduction)


def semi_hard_triplet_loss(embeddings: jax.Array, labels: jax.Array, margin: float = 1.0,
                           metric: Metric = 'euclidean', normalize: bool = False,
                           example_mask: jax.Array | None = None) -> jax.Array:
  """Triplet loss with semi-hard negatives (FaceNet), with TF-Addons `triplet_semihard_loss` semantics.

  For every anchor-positive pair (a, p), a != p: the negative distance is the smallest d_an with d_an > d_ap; when
  no negative is farther than the positive, the largest d_an (the easiest negative); when the anchor has no
  negative at all, the smallest distance in the anchor's row (0, the anchor itself) as in TF-Addons' masked
  maximum. Loss = mean over anchor-positive pairs of max(0, margin + d_ap - d_neg), so pairs without negatives still
  count (TF-Addons: labels [0, 0], embeddings [[0, 1], [1, 0]], margin 1 give 1 + sqrt(2)).

  Args:
    embeddings: [N, D]; labels: [N].
    margin: the required gap.
    metric: 'euclidean' matches TF-Addons' default distance_metric='L2', 'squared_euclidean' its 'squared-L2'.
    normalize: L2-normalise embeddings first.
    example_mask: [N] bool, the real rows (default all).

  Returns:
    [] loss; 0 (TF-Addons: NaN) when the batch has no anchor-positive pair.
  """
  n = labels.shape[0]
  real = jnp.ones((n,), bool) if example_mask is None else example_mask.astype(bool)
  distances = pairwise_distances(embeddings, metric=metric, normalize=normalize)
  positive, negative = pair_masks(labels, example_mask)
  # [a, p, n]: negatives of a farther from a than p is.
  outside = negative[:, None, :] & (distances[:, None, :] > distances[:, :, None])
  nearest_outside = jnp.min(jnp.where(outside, distances[:, None, :], jnp.inf), 2)
  row_minimum = jnp.min(jnp.where(real[None, :], distances, jnp.inf), 1)
  farthest_negative = jnp.max(jnp.where(negative, distances, row_minimum[:, None]), 1)
  negative_distance = jnp.where(jnp.any(outside, 2), nearest_outside, farthest_negative[:, None])
  losses = jnp.maximum(margin + distances - jnp.where(positive, negative_distance, 0.0), 0.0)
  return _masked_mean(losses, positive)


def prototypical_loss(embeddings: jax.Array, labels: jax.Array, examples_per_class: int,
                      metric: Metric = 'squared_euclidean', scale: float = 1.0,
                      example_mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Prototypical-network loss (Snell et al. 2017) of the K episodes hidden in a P x K batch.

  Episode j (j = 0..K-1) takes the rows at position j of their class group (row index i with i % K == j) as its
  queries and every other row as its support set: a class's prototype is the mean of its support embeddings (K - 1
  of them for a class with one group of K). Each query gets logits -scale * distance(query, prototype) over the
  classes that have support rows in the episode, and the loss is its softmax cross-entropy towards its own class.
  Classes that occupy several groups of the batch simply have more support rows; labels need not be grouped at all,
  but a query whose class has no support row in its episode, or an episode with a single class, counts for nothing.

  Args:
    embeddings: [N, D]; labels: [N].
    examples_per_class: K, the group size (N need not be a multiple of K).
    metric: the distance of `pairwise_distances` (Snell et al.: 'squared_euclidean').
    scale: logits are -scale * distance (a temperature for L2-normalised embeddings, whose distances are small).
    example_mask: [N] bool, the real rows (default all).

  Returns:
    loss [] (mean over the usable queries; 0 when none) and the accuracy [] of the nearest prototype on them.
  """
  n = labels.shape[0]
  real = jnp.ones((n,), bool) if example_mask is None else example_mask.astype(bool)
  embeddings = embeddings.astype(jnp.float32)
  position = jnp.arange(n) % examples_per_class
  episodes = jnp.arange(examples_per_class)[:, None]  # [K, 1]
  query = (position[None, :] == episodes) & real[None, :]  # [K, N]
  support = (position[None, :] != episodes) & real[None, :]  # [K, N]
  same = labels[:, None] == labels[None, :]  # [N, N]
  # members[j, m, i]: support row i of episode j has row m's class; row m stands for its class in episode j when it
  # is that class's first support row ("representative").
  members = support[:, None, :] & same[None, :, :]  # [K, N, N]
  earlier = jnp.tril(jnp.ones((n, n), bool), -1)  # [m, i]: i < m
  representative = support & ~jnp.any(members & earlier[None], axis=2)  # [K, N]
  counts = jnp.sum(members, axis=2, keepdims=True)  # [K, N, 1]
  prototypes = jnp.einsum('kmi,id->kmd', members.astype(jnp.float32), embeddings,
                          precision=jax.lax.Precision.HIGHEST) / jnp.maximum(counts, 1)  # [K, N, D]
  distances = jax.vmap(lambda p: pairwise_distances(embeddings, p, metric=metric))(prototypes)  # [K, Nq, Nm]
  logits = jnp.where(representative[:, None, :], -scale * distances, -jnp.inf)
  own = representative[:, None, :] & same[None, :, :]  # [K, Nq, Nm]: the query's own class's representative
  usable = query & jnp.any(own, axis=2) & (jnp.sum(representative, axis=1, keepdims=True) > 1)  # [K, N]
  # Unusable queries get all-zero logits so that no -inf reaches the gradient.
  safe_logits = jnp.where(usable[:, :, None], logits, 0.0)
  log_normaliser = jax.nn.logsumexp(safe_logits, axis=2)
  own_logit = jnp.sum(jnp.where(own, safe_logits, 0.0), axis=2)
  losses = log_normaliser - own_logit
  best_is_own = jnp.take_along_axis(own, jnp.argmax(logits, axis=2)[:, :, None], axis=2)[:, :, 0]
  return _masked_mean(losses, usable), _masked_mean(best_is_own.astype(jnp.float32), usable)


def nt_xent_loss(embeddings: jax.Array, positive_ids: jax.Array, temperature: float = 0.2,
                 example_mask: jax.Array | None = None) -> jax.Array:
  """Normalised-temperature cross-entropy of SimCLR (Chen et al. 2020) and its supervised form SupCon (Khosla et al.
  2020, L_out): rows are L2-normalised, every row is an anchor whose logits are cos(anchor, other) / temperature over
  all other real rows, and its loss is minus the mean log-softmax of its positives (the other rows with its id).

  With the ids of two augmented views of each image (0..B-1 twice) this is NT-Xent, label-free (each image its own
  class); with class labels as ids it is SupCon.

  Args:
    embeddings: [N, D] (normalised here).
    positive_ids: [N] int, rows with equal ids are positives of each other.
    temperature: the softmax temperature (SimCLR: 0.1-0.5).
    example_mask: [N] bool, the real rows (default all); anchors without a positive count for nothing.

  Returns:
    loss [], the mean over anchors with at least one positive (0 when none).
  """
  n = positive_ids.shape[0]
  real = jnp.ones((n,), bool) if example_mask is None else example_mask.astype(bool)
  z = l2_normalize(embeddings)
  others = real[None, :] & ~jnp.eye(n, dtype=bool)  # [anchor, row]
  logits = jnp.matmul(z, z.T, precision=jax.lax.Precision.HIGHEST) / temperature
  log_probs = jax.nn.log_softmax(jnp.where(others, logits, -1e30), axis=1)
  positive = others & (positive_ids[:, None] == positive_ids[None, :])
  counts = jnp.sum(positive, axis=1)
  losses = -jnp.sum(jnp.where(positive, log_probs, 0.0), axis=1) / jnp.maximum(counts, 1)
  return _masked_mean(losses, real & (counts > 0))


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of `values` where `mask` is True; 0 (with a zero gradient) when the mask is empty."""
  return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def _reduce(losses: jax.Array, valid: jax.Array, reduction: str) -> jax.Array:
  """'mean' over the valid entries or 'mean_positive' over the valid entries with loss > 0."""
  if reduction == 'mean':
    return _masked_mean(losses, valid)
  if reduction == 'mean_positive':
    return _masked_mean(losses, valid & (losses > 0))
  raise ConfigError(f'unknown reduction {reduction!r}; use mean or mean_positive')


def _check_metric(metric: str) -> None:
  if metric not in METRICS:
    raise ConfigError(f'unknown metric {metric!r}; use one of {", ".join(METRICS)}')
