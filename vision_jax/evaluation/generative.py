"""Sample-quality metrics of generative models on features of a fixed network: Fréchet distance (FID), kernel
distance (KID) and improved precision/recall.

The features come from a small classifier trained in this project on the same data (`feature_nets`): no Inception
weights are downloadable on these machines, so the numbers are comparable across runs of this project, not with
published Inception FIDs.

  * FID (Heusel et al., NeurIPS 2017): ||mu_r - mu_g||^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2)) of the Gaussians fitted
    to the two feature sets (covariances with the n - 1 divisor, as pytorch-fid's `np.cov`). The trace of the
    matrix square root is taken as sum(sqrt(eig(S_r^(1/2) S_g S_r^(1/2)))) with symmetric eigendecompositions in
    float64: the same value as scipy's `sqrtm(S_r S_g)` trace, without its complex round-off.
    The moments are accumulated as sums on device (`feature_sums`) and reduced by a `SumEvaluator`
    (`frechet_evaluator`), so FID is exact under any batch size.
  * KID (Binkowski et al., ICLR 2018): unbiased MMD^2 with the polynomial kernel (x.y / d + 1)^3, averaged over
    random subsets (as torchmetrics' `KernelInceptionDistance`).
  * Precision and recall (Kynkäänniemi et al., NeurIPS 2019): each set's support is the union of balls around its
    points reaching their k-th nearest neighbour in the same set; precision is the fraction of generated points
    inside the real support, recall the fraction of real points inside the generated support.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.evaluation.evaluators import SumEvaluator


def feature_sums(features: jax.Array, weights: jax.Array, prefix: str) -> dict[str, jax.Array]:
  """Per-batch sums for the Gaussian moments of a feature set (on device, inside an eval step).

  Args:
    features: [N, D] features.
    weights: [N] 1 for real examples of the batch, 0 for padding.
    prefix: name prefix of the outputs ("real", "fake").

  Returns:
    {prefix_sum: [D], prefix_outer: [D, D], prefix_count: []} float32.
  """
  features = features.astype(jnp.float32) * weights[:, None]
  return {f"{prefix}_sum": jnp.sum(features, axis=0), f"{prefix}_outer": features.T @ features,
          f"{prefix}_count": jnp.sum(weights.astype(jnp.float32))}


def moments_from_sums(total: np.ndarray, outer: np.ndarray, count: float) -> tuple[np.ndarray, np.ndarray]:
  """(mean [D], covariance [D, D] with the n - 1 divisor) from sum [D], sum of outer products [D, D] and count."""
  total, outer, count = np.asarray(total, np.float64), np.asarray(outer, np.float64), float(count)
  mean = total / count
  covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
  return mean, (covariance + covariance.T) / 2


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
  values, vectors = np.linalg.eigh(matrix)
  return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
  """The Fréchet distance between N(mean1, cov1) and N(mean2, cov2).

  Args:
    mean1, mean2: [D] means.
    cov1, cov2: [D, D] symmetric positive semi-definite covariances.

  Returns:
    The distance (squared-feature units), float64; never negative.
  """
  mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
  cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
  root1 = _symmetric_sqrt(cov1)
  middle = root1 @ cov2 @ root1
  trace_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None))))
  distance = float(np.sum(np.square(mean1 - mean2)) + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)
  return max(distance, 0.0)


def frechet_distance_of_features(features1: np.ndarray, features2: np.ndarray) -> float:
  """FID between two feature sets [N1, D] and [N2, D] (float64 moments)."""
  f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


def frechet_evaluator(real_prefix: str = "real", fake_prefix: str = "fake", name: str = "fid") -> SumEvaluator:
  """A `SumEvaluator` of `feature_sums` outputs of two prefixes -> {name: FID}."""
  keys = [f"{p}_{k}" for p in (real_prefix, fake_prefix) for k in ("sum", "outer", "count")]

  def finish(sums: Mapping[str, np.ndarray]) -> dict[str, Any]:
    real = moments_from_sums(sums[keys[0]], sums[keys[1]], sums[keys[2]])
    fake = moments_from_sums(sums[keys[3]], sums[keys[4]], sums[keys[5]])
    return {name: frechet_distance(*real, *fake)}

  return SumEvaluator(keys, finish)


def _polynomial_mmd(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef: float) -> float:
  kxx = (x @ x.T * gamma + coef) ** degree
  kyy = (y @ y.T * gamma + coef) ** degree
  kxy = (x @ y.T * gamma + coef) ** degree
  m, n = len(x), len(y)
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
               - 2 * kxy.mean())


def kernel_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
                    degree: int = 3, gamma: float | None = None, coef: float = 1.0,
                    seed: int = 0) -> tuple[float, float]:
  """KID: unbiased MMD^2 with the kernel (gamma x.y + coef)^degree, mean and std over random subsets.

  Args:
    real: [N1, D] features.
    fake: [N2, D] features.
    num_subsets: subsets drawn (without replacement within a subset).
    subset_size: points per subset from each set (capped at the smaller set's size).
    degree, gamma, coef: the kernel (gamma defaults to 1 / D).
    seed: NumPy seed of the subset draws.

  Returns:
    (mean, standard deviation over subsets) in squared-feature units (may be slightly negative: unbiased).
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  gamma = 1.0 / real.shape[1] if gamma is None else gamma
  size = min(subset_size, len(real), len(fake))
  rng = np.random.default_rng(seed)
  values = [_polynomial_mmd(real[rng.choice(len(real), size, replace=False)],
                            fake[rng.choice(len(fake), size, replace=False)], degree, gamma, coef)
            for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  return np.clip(np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2 * a @ b.T, 0, None)


def _kth_neighbour_radii(points: np.ndarray, k: int) -> np.ndarray:
  """Squared distance of each point to its k-th nearest other point of the set."""
  distances = _squared_distances(points, points)
  return np.partition(distances, k, axis=1)[:, k]  # column 0 is the point itself (distance 0)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
  """Improved precision and recall (Kynkäänniemi et al.) with k-nearest-neighbour radii.

  Args:
    real: [N1, D] features (N1 > k).
    fake: [N2, D] features (N2 > k).
    k: neighbour defining each ball's radius (3 in the paper).

  Returns:
    (precision, recall), each in [0, 1].
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  real_radii, fake_radii = _kth_neighbour_radii(real, k), _kth_neighbour_radii(fake, k)
  cross = _squared_distances(fake, real)  # [N2, N1]
  precision = float(np.mean(np.any(cross <= real_radii[None, :], axis=1)))
  recall = float(np.mean(np.any(cross.T <= fake_radii[None, :], axis=1)))
  return precision, recall


def feature_set_metrics(real: np.ndarray, fake: np.ndarray, kid_subsets: int = 10, kid_subset_size: int = 1000,
                        k: int = 3) -> dict[str, float]:
  """KID (mean and std over `kid_subsets` subsets of `kid_subset_size`, capped) and improved precision/recall
  (k-NN radius `k`) of fake features [M, D] against real features [N, D]."""
  kid, kid_std = kernel_distance(real, fake, kid_subsets, kid_subset_size)
  precision, recall = precision_recall(real, fake, k)
  return {"kid": kid, "kid_std": kid_std, "precision": precision, "recall": recall}
