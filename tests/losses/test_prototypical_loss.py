"""The prototypical loss of episodes inside a P x K batch against a NumPy float64 loop over episodes, queries and
classes (Snell et al. 2017), and a hand-worked two-class batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.losses import metric


def ref_prototypical(x, labels, k, metric_name='squared_euclidean', scale=1.0, mask=None):
  """Loop reference: episode j queries the rows i % k == j, the other real rows are the support set."""
  x = np.asarray(x, np.float64)
  n = len(labels)
  mask = np.ones(n, bool) if mask is None else np.asarray(mask, bool)
  losses, hits = [], []
  for j in range(k):
    support = [i for i in range(n) if i % k != j and mask[i]]
    classes = sorted({labels[i] for i in support})
    if len(classes) < 2:
      continue
    prototypes = {c: np.mean([x[i] for i in support if labels[i] == c], axis=0) for c in classes}
    for q in range(n):
      if q % k != j or not mask[q] or labels[q] not in prototypes:
        continue
      distances = []
      for c in classes:
        a, b = x[q], prototypes[c]
        if metric_name == 'cosine':
          distances.append(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        else:
          squared = np.sum((a - b) ** 2)
          distances.append(squared if metric_name == 'squared_euclidean' else np.sqrt(squared))
      logits = -scale * np.array(distances)
      own = classes.index(labels[q])
      losses.append(np.log(np.sum(np.exp(logits - logits.max()))) + logits.max() - logits[own])
      hits.append(float(np.argmax(logits) == own))
  return float(np.mean(losses)), float(np.mean(hits))


@pytest.mark.parametrize('metric_name,scale', [('squared_euclidean', 1.0), ('euclidean', 3.0), ('cosine', 10.0)])
def test_matches_loop_reference_with_repeated_and_ungrouped_classes(metric_name, scale):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(15, 4)).astype(np.float32)
  labels = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 2, 2, 2, 3, 1, 3])  # class 0 in two groups, a mixed last group
  mask = np.ones(15, bool)
  mask[13] = False
  loss, accuracy = metric.prototypical_loss(jnp.asarray(x), jnp.asarray(labels), 3, metric_name, scale,
                                            jnp.asarray(mask))
  ref_loss, ref_accuracy = ref_prototypical(x, labels, 3, metric_name, scale, mask)
  np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(float(accuracy), ref_accuracy, atol=1e-6)


def test_hand_worked_two_classes():
  # K = 2: episode 0 queries rows 0 and 2 against prototypes (1,) and (3,); episode 1 the other way round.
  x = jnp.asarray([[0.0], [1.0], [2.0], [3.0]])
  labels = jnp.asarray([0, 0, 1, 1])
  loss, accuracy = metric.prototypical_loss(x, labels, 2)
  # Squared distances to the prototypes (class 0, class 1). Episode 0 (prototypes 1 and 3): query 0 -> (1, 9),
  # query 2 -> (1, 1); episode 1 (prototypes 0 and 2): query 1 -> (1, 1), query 3 -> (9, 1).
  expected = np.mean([np.log1p(np.exp(-8.0)), np.log(2.0), np.log(2.0), np.log1p(np.exp(-8.0))])
  np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
  assert float(accuracy) == pytest.approx(0.75)  # both ties go to class 0: right for query 1, wrong for query 2


def test_no_usable_query_gives_zero_loss_and_finite_gradient():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
  labels = jnp.asarray([0, 0, 0, 0])  # one class: no episode has two classes
  loss, grad = jax.value_and_grad(lambda e: metric.prototypical_loss(e, labels, 2)[0])(x)
  assert float(loss) == 0.0
  assert np.all(np.isfinite(np.asarray(grad)))
