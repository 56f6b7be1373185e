"""The 50-image history pool (Zhu et al.'s ImagePool): fills in order, then each image is either passed through
(pool unchanged) or swapped with a stored one (returned, and replaced by the new image), about half of each."""

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.data import image_pool


def _batch(start: int, n: int) -> jnp.ndarray:
  """Images [n, 2, 2, 1] whose pixels all equal their id (start, start + 1, ...)."""
  return jnp.broadcast_to(jnp.arange(start, start + n, dtype=jnp.float32)[:, None, None, None], (n, 2, 2, 1))


def _ids(images) -> np.ndarray:
  return np.asarray(images)[:, 0, 0, 0].astype(int)


def test_pool_fills_in_order_and_returns_the_inputs_until_full():
  query = jax.jit(image_pool.query_pool)
  pool = image_pool.init_pool(5, (2, 2, 1))
  pool, out = query(pool, _batch(1, 3), jax.random.PRNGKey(0))
  np.testing.assert_array_equal(_ids(out), [1, 2, 3])
  assert int(pool["count"]) == 3
  np.testing.assert_array_equal(_ids(pool["images"]), [1, 2, 3, 0, 0])
  pool, out = query(pool, _batch(4, 2), jax.random.PRNGKey(1))
  np.testing.assert_array_equal(_ids(out), [4, 5])
  np.testing.assert_array_equal(_ids(pool["images"]), [1, 2, 3, 4, 5])
  assert int(pool["count"]) == 5


def test_full_pool_swaps_or_passes_each_image():
  query = jax.jit(image_pool.query_pool)
  pool = image_pool.init_pool(4, (2, 2, 1))
  pool, _ = query(pool, _batch(1, 4), jax.random.PRNGKey(0))
  swapped = passed = 0
  next_id = 5
  for step in range(60):
    before = _ids(pool["images"])
    pool, out = query(pool, _batch(next_id, 1), jax.random.PRNGKey(step + 1))
    after, returned = _ids(pool["images"]), int(_ids(out)[0])
    if returned == next_id:  # passed through: the pool is unchanged
      passed += 1
      np.testing.assert_array_equal(after, before)
    else:  # a stored image came back and the new one took exactly its slot
      swapped += 1
      assert returned in before
      changed = np.flatnonzero(after != before)
      assert len(changed) == 1 and before[changed[0]] == returned and after[changed[0]] == next_id
    next_id += 1
  assert int(pool["count"]) == 4
  assert 15 <= swapped <= 45 and swapped + passed == 60  # p = 1/2 each (binomial(60, 0.5): 15..45 is > 6 sigma)


def test_a_batch_is_processed_image_by_image():
  """Within one batch, a later image can receive an image stored by an earlier one of the same batch."""
  query = jax.jit(image_pool.query_pool)
  pool = image_pool.init_pool(1, (2, 2, 1))
  pool, _ = query(pool, _batch(1, 1), jax.random.PRNGKey(0))
  outs = []
  for seed in range(30):
    _, out = query(pool, _batch(10, 2), jax.random.PRNGKey(seed))
    outs.append(tuple(_ids(out)))
  assert (1, 10) in outs  # first swapped with the stored 1, second swapped with the just-stored 10
  assert all(o[0] in (1, 10) and o[1] in (1, 10, 11) for o in outs)


def test_size_zero_pool_passes_batches_through():
  pool = image_pool.init_pool(0, (2, 2, 1))
  images = _batch(3, 4)
  _, out = image_pool.query_pool(pool, images, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(np.asarray(out), np.asarray(images))
