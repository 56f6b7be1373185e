"""Metric-learning losses against TF-Addons' documented vector, NumPy float64 loop references and
pytorch-metric-learning fixtures (tests/fixtures/metric/make_pml_fixtures.py)."""

import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.errors import ConfigError
from vision_jax.losses import metric

FIXTURE = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'metric', 'pml.npz')


def random_batch(seed=0, n=12, d=5, classes=3):
  rng = np.random.default_rng(seed)
  embeddings = rng.normal(size=(n, d)).astype(np.float32)
  labels = rng.integers(0, classes, size=n)
  labels[0] = classes  # a singleton class
  return embeddings, labels


# ---- NumPy float64 references: plain loops over pairs and triplets ----

def ref_distance(a, b, metric_name, normalize=False):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if normalize or metric_name == 'cosine':
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
  if metric_name == 'cosine':
    return 1.0 - float(a @ b)
  squared = float(np.sum((a - b) ** 2))
  return np.sqrt(squared) if metric_name == 'euclidean' else squared


def ref_matrix(x, metric_name='euclidean', normalize=False):
  n = len(x)
  return np.array([[ref_distance(x[i], x[j], metric_name, normalize) for j in range(n)] for i in range(n)])


def ref_batch_all(x, y, margin, metric_name='euclidean', normalize=False, soft=False, only_positive=True):
  d = ref_matrix(x, metric_name, normalize)
  values, active, total = [], 0, 0
  for a, p, q in itertools.product(range(len(y)), repeat=3):
    if a != p and y[a] == y[p] and y[a] != y[q]:
      total += 1
      gap = d[a, p] - d[a, q]
      loss = np.log1p(np.exp(gap)) if soft else max(gap + margin, 0.0)
      active += gap + margin > 0
      if loss > 0 or not only_positive:
        values.append(loss)
  return (np.mean(values) if values else 0.0), active / max(total, 1)


def ref_batch_hard(x, y, margin, metric_name='euclidean', normalize=False, soft=False, only_positive=False):
  d = ref_matrix(x, metric_name, normalize)
  values = []
  for a in range(len(y)):
    pos = [d[a, p] for p in range(len(y)) if p != a and y[p] == y[a]]
    neg = [d[a, q] for q in range(len(y)) if y[q] != y[a]]
    if pos and neg:
      gap = max(pos) - min(neg)
      loss = np.log1p(np.exp(gap)) if soft else max(gap + margin, 0.0)
      if loss > 0 or not only_positive:
        values.append(loss)
  return np.mean(values) if values else 0.0


def ref_semi_hard(x, y, margin, metric_name='euclidean'):
  d = ref_matrix(x, metric_name)
  values = []
  for a in range(len(y)):
    negatives = [d[a, q] for q in range(len(y)) if y[q] != y[a]]
    for p in range(len(y)):
      if p == a or y[p] != y[a]:
        continue
      farther = [dn for dn in negatives if dn > d[a, p]]
      if farther:
        dn = min(farther)
      elif negatives:
        dn = max(negatives)
      else:
        dn = 0.0  # TF-Addons: the row minimum, the anchor's zero distance to itself
      values.append(max(margin + d[a, p] - dn, 0.0))
  return np.mean(values) if values else 0.0


def ref_contrastive(d, similar, margin, squared):
  power = 2 if squared else 1
  return similar * d ** power + (1 - similar) * max(margin - d, 0.0) ** power


# ---- tests ----

def test_tf_addons_semi_hard_vector():
  loss = metric.semi_hard_triplet_loss(jnp.array([[0.0, 1.0], [1.0, 0.0]]), jnp.array([0, 0]), margin=1.0)
  np.testing.assert_allclose(float(loss), 2.4142137, rtol=0, atol=2e-7)


@pytest.mark.parametrize('metric_name', ['euclidean', 'squared_euclidean', 'cosine'])
@pytest.mark.parametrize('normalize', [False, True])
def test_pairwise_and_paired_distances(metric_name, normalize):
  x, _ = random_batch(1)
  got = metric.pairwise_distances(jnp.asarray(x), metric=metric_name, normalize=normalize)
  np.testing.assert_allclose(np.asarray(got), ref_matrix(x, metric_name, normalize), rtol=1e-5, atol=2e-5)
  other = np.random.default_rng(2).normal(size=(4, x.shape[1])).astype(np.float32)
  cross = metric.pairwise_distances(jnp.asarray(x), jnp.asarray(other), metric_name, normalize)
  want = np.array([[ref_distance(a, b, metric_name, normalize) for b in other] for a in x])
  np.testing.assert_allclose(np.asarray(cross), want, rtol=1e-5, atol=2e-5)
  paired = metric.paired_distances(jnp.asarray(x[:4]), jnp.asarray(other), metric_name, normalize)
  np.testing.assert_allclose(np.asarray(paired), np.diag(want[:4]), rtol=1e-5, atol=2e-5)


def test_gradients_finite_at_zero_distance():
  x = jnp.array([[1.0, 2.0], [1.0, 2.0], [3.0, -1.0], [0.0, 0.0]])  # duplicate rows and a zero row
  y = jnp.array([0, 0, 1, 1])
  losses = {
      'distances': lambda e: jnp.sum(metric.pairwise_distances(e)),
      'normalized': lambda e: jnp.sum(metric.pairwise_distances(e, metric='cosine', normalize=True)),
      'paired': lambda e: jnp.sum(metric.paired_distances(e[:2], e[1:3])),
      'batch_all': lambda e: metric.batch_all_triplet_loss(e, y)[0],
      'batch_hard': lambda e: metric.batch_hard_triplet_loss(e, y, soft=True),
      'semi_hard': lambda e: metric.semi_hard_triplet_loss(e, y),
      'contrastive': lambda e: metric.batch_contrastive_loss(e, y, squared=False),
  }
  for name, fn in losses.items():
    grad = jax.jit(jax.grad(fn))(x)
    assert np.all(np.isfinite(np.asarray(grad))), name
  assert float(jax.grad(metric.safe_sqrt)(0.0)) == 0.0
  assert float(jax.grad(metric.safe_sqrt)(4.0)) == pytest.approx(0.25)


@pytest.mark.parametrize('squared', [True, False])
def test_contrastive_against_loops(squared):
  rng = np.random.default_rng(3)
  a, b = rng.normal(size=(2, 10, 4)).astype(np.float32)
  similar = rng.integers(0, 2, size=10)
  mask = np.arange(10) < 8
  d = np.array([ref_distance(u, v, 'euclidean') for u, v in zip(a, b)])
  want = np.mean([ref_contrastive(d[i], similar[i], 2.5, squared) for i in range(8)])
  got = metric.contrastive_loss(jnp.asarray(a), jnp.asarray(b), jnp.asarray(similar), 2.5, squared=squared,
                                pair_mask=jnp.asarray(mask))
  np.testing.assert_allclose(float(got), want, rtol=1e-5)
  halved = metric.contrastive_loss(jnp.asarray(a), jnp.asarray(b), jnp.asarray(similar), 2.5, squared=squared,
                                   halve=True, pair_mask=jnp.asarray(mask))
  np.testing.assert_allclose(float(halved), want / 2, rtol=1e-5)
  x, y = random_batch(4)
  dm = ref_matrix(x)
  pairs = [(i, j) for i in range(len(y)) for j in range(len(y)) if i != j]
  want_batch = np.mean([ref_contrastive(dm[i, j], float(y[i] == y[j]), 2.5, squared) for i, j in pairs])
  got_batch = metric.batch_contrastive_loss(jnp.asarray(x), jnp.asarray(y), 2.5, squared=squared)
  np.testing.assert_allclose(float(got_batch), want_batch, rtol=1e-5)


@pytest.mark.parametrize('metric_name,normalize,soft', [
    ('euclidean', False, False), ('squared_euclidean', False, False), ('cosine', False, False),
    ('euclidean', True, False), ('euclidean', False, True)])
def test_triplet_losses_against_loops(metric_name, normalize, soft):
  x, y = random_batch(5)
  margin = 0.3 if metric_name == 'cosine' or normalize else 1.0
  e, lab = jnp.asarray(x), jnp.asarray(y)
  kwargs = dict(metric=metric_name, normalize=normalize)
  batch_all = jax.jit(metric.batch_all_triplet_loss, static_argnames=('metric', 'normalize', 'soft', 'reduction'))
  batch_hard = jax.jit(metric.batch_hard_triplet_loss, static_argnames=('metric', 'normalize', 'soft', 'reduction'))
  for only_positive, reduction in [(True, 'mean_positive'), (False, 'mean')]:
    want, want_fraction = ref_batch_all(x, y, margin, metric_name, normalize, soft, only_positive)
    got, fraction = batch_all(e, lab, margin, soft=soft, reduction=reduction, **kwargs)
    np.testing.assert_allclose(float(got), want, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(float(fraction), want_fraction, rtol=1e-6)
    assert 0 < want_fraction < 1  # the batch has active and inactive triplets
    want = ref_batch_hard(x, y, margin, metric_name, normalize, soft, only_positive=only_positive)
    got = batch_hard(e, lab, margin, soft=soft, reduction=reduction, **kwargs)
    np.testing.assert_allclose(float(got), want, rtol=2e-5, atol=1e-6)
  if not soft and not normalize:
    got = metric.semi_hard_triplet_loss(e, lab, margin, metric=metric_name)
    np.testing.assert_allclose(float(got), ref_semi_hard(x, y, margin, metric_name), rtol=2e-5, atol=1e-6)


def test_semi_hard_uses_both_branches():
  y = jnp.array([0, 0, 1])
  # Points 0, 1 (class 0) and 3 (class 1) on a line. Pair (0, 1): d_ap 1, negative at 3 is farther -> 2.5 + 1 - 3;
  # pair (1, 0): d_ap 1, negative at 2 is farther -> 2.5 + 1 - 2.
  x = jnp.array([[0.0], [1.0], [3.0]])
  np.testing.assert_allclose(float(metric.semi_hard_triplet_loss(x, y, margin=2.5)), (0.5 + 1.5) / 2, rtol=1e-6)
  # Points 0, 3 (class 0) and 1 (class 1): no negative is farther than the positive (d_ap 3), so the farthest
  # negative is used: pair (0, 1) -> 1 + 3 - 1, pair (1, 0) -> 1 + 3 - 2.
  x = jnp.array([[0.0], [3.0], [1.0]])
  np.testing.assert_allclose(float(metric.semi_hard_triplet_loss(x, y, margin=1.0)), (3 + 2) / 2, rtol=1e-6)


def test_no_valid_triplet_gives_zero_not_nan():
  batch_hard = jax.jit(metric.batch_hard_triplet_loss)
  x = jnp.asarray(np.random.default_rng(6).normal(size=(4, 3)).astype(np.float32))
  all_distinct = jnp.array([0, 1, 2, 3])
  one_class = jnp.array([7, 7, 7, 7])
  for labels in (all_distinct, one_class):
    loss, fraction = jax.jit(metric.batch_all_triplet_loss)(x, labels)
    assert float(loss) == 0.0 and float(fraction) == 0.0
    assert float(batch_hard(x, labels)) == 0.0
    assert np.all(np.isfinite(np.asarray(jax.jit(jax.grad(batch_hard))(x, labels))))
  assert float(jax.jit(metric.semi_hard_triplet_loss)(x, all_distinct)) == 0.0  # no anchor-positive pair at all
  assert float(jax.jit(metric.batch_contrastive_loss)(x[:1], all_distinct[:1])) == 0.0


def test_example_mask_equals_truncated_batch():
  x, y = random_batch(7)
  keep = np.arange(len(y)) < 9
  padded = np.where(keep[:, None], x, 1e3).astype(np.float32)  # junk rows that would dominate if not masked
  e, lab, mask = jnp.asarray(padded), jnp.asarray(y), jnp.asarray(keep)
  ex, ey = jnp.asarray(x[:9]), jnp.asarray(y[:9])
  losses = [lambda *a, **k: metric.batch_all_triplet_loss(*a, **k)[0], metric.batch_hard_triplet_loss,
            metric.semi_hard_triplet_loss, metric.batch_contrastive_loss]
  for loss in losses:
    masked = jax.jit(lambda e, lab, mask, loss=loss: loss(e, lab, example_mask=mask))(e, lab, mask)
    truncated = jax.jit(loss)(ex, ey)
    np.testing.assert_allclose(float(masked), float(truncated), rtol=1e-6)
  want = ref_batch_hard(x[:9], y[:9], 1.0)
  np.testing.assert_allclose(float(jax.jit(metric.batch_hard_triplet_loss)(e, lab, example_mask=mask)), want, rtol=2e-5)


def test_unknown_names_raise_config_error():
  x = jnp.zeros((3, 2))
  with pytest.raises(ConfigError, match='metric'):
    metric.pairwise_distances(x, metric='manhattan')
  with pytest.raises(ConfigError, match='reduction'):
    metric.batch_hard_triplet_loss(x, jnp.array([0, 0, 1]), reduction='sum')


@jax.jit
def pml_cases(x, y):
  return {
      'batch_hard_nonzero': metric.batch_hard_triplet_loss(x, y, 1.0, reduction='mean_positive'),
      'batch_hard_mean': metric.batch_hard_triplet_loss(x, y, 1.0),
      'batch_hard_unit_mean': metric.batch_hard_triplet_loss(x, y, 0.2, normalize=True),
      'batch_hard_soft_mean': metric.batch_hard_triplet_loss(x, y, soft=True),
      'batch_all_nonzero': metric.batch_all_triplet_loss(x, y, 1.0)[0],
      'batch_all_unit_nonzero': metric.batch_all_triplet_loss(x, y, 0.2, normalize=True)[0],
      'contrastive_nonzero': metric.batch_contrastive_loss(x, y, 4.0, squared=False,
                                                           reduction='nonzero_mean_per_kind'),
      'contrastive_unit_nonzero': metric.batch_contrastive_loss(x, y, 1.2, squared=False, normalize=True,
                                                                reduction='nonzero_mean_per_kind'),
  }


def test_against_pytorch_metric_learning():
  with np.load(FIXTURE, allow_pickle=False) as data:
    data = dict(data)
  got = pml_cases(jnp.asarray(data['embeddings']), jnp.asarray(data['labels']))
  assert len(got) == 8
  differences = {key: abs(float(value) - float(data[key])) for key, value in got.items()}
  print('max |vision_jax - pytorch_metric_learning| =', max(differences.values()), differences)
  for key, value in got.items():
    np.testing.assert_allclose(float(value), float(data[key]), rtol=1e-5, atol=1e-6, err_msg=key)
