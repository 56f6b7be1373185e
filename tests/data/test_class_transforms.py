import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.data import class_transforms


@pytest.mark.parametrize("count", [4, 8])
def test_class_transforms_turn_each_group_and_relabel_it(count):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 255, (12, 5, 5, 1)).astype(np.float32)  # 4 groups of K = 3
  labels = np.repeat([2, 0, 2, 1], 3).astype(np.int32)
  out, new_labels = class_transforms.transformed_classes(jax.random.key(1), jnp.asarray(images), jnp.asarray(labels),
                                                        count, 3)
  out, new_labels = np.asarray(out), np.asarray(new_labels)
  transforms = new_labels - labels * count
  assert ((0 <= transforms) & (transforms < count)).all()
  for g in range(4):  # one transform per group, the NumPy turn (of the mirror image for transforms >= 4)
    t = transforms[3 * g]
    assert (transforms[3 * g:3 * g + 3] == t).all()
    for i in range(3 * g, 3 * g + 3):
      source = np.fliplr(images[i]) if t >= 4 else images[i]
      np.testing.assert_array_equal(out[i], np.rot90(source, t % 4))
  # The same seed draws the same transforms; over many groups every transform occurs.
  many = class_transforms.transformed_classes(jax.random.key(2), jnp.zeros((400, 2, 2, 1)), jnp.zeros(400, jnp.int32),
                                             count, 1)[1]
  assert set(np.asarray(many).tolist()) == set(range(count))
