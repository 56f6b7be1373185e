"""`backends.cpu.fusion_barrier.materialize`: values pass through unchanged, the compiled program keeps the
conditional (the fusion boundary), and RoIAlign's gather on CPU reads materialized indices and features."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.backends.cpu import fusion_barrier

# The module, not the function that vision_jax.ops exports under the same name.
roi_align_lib = importlib.import_module("vision_jax.ops.roi_align")


def test_values_pass_through_and_the_other_branch_poisons():
  values = (jnp.arange(6.0).reshape(2, 3), jnp.arange(4, dtype=jnp.int32))
  kept = jax.jit(fusion_barrier.materialize)(values, jnp.asarray(True))
  np.testing.assert_array_equal(kept[0], values[0])
  np.testing.assert_array_equal(kept[1], values[1])
  poisoned = jax.jit(fusion_barrier.materialize)(values, jnp.asarray(False))
  assert np.isnan(np.asarray(poisoned[0])).all()
  np.testing.assert_array_equal(poisoned[1], np.zeros(4, np.int32))


def test_the_compiled_program_keeps_the_conditional():
  def f(x, idx):
    y, i = fusion_barrier.materialize((jnp.tanh(x), idx * 3), jnp.min(idx, initial=0) >= 0)
    return jnp.sum(y[i], axis=1)

  text = jax.jit(f).lower(jnp.ones((8, 4)), jnp.zeros((5, 3), jnp.int32)).compile().as_text()
  assert "conditional(" in text


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the barrier is CPU-only")
def test_roi_align_gather_reads_materialized_inputs_and_matches_without_the_barrier(monkeypatch, request):
  rng = np.random.default_rng(0)
  features = jnp.asarray(rng.normal(size=(2, 9, 11, 5)), jnp.float32)
  boxes = jnp.asarray([[0.5, 1.0, 7.5, 6.0], [2.0, 0.0, 10.0, 8.5], [1.0, 1.0, 3.0, 2.0]], jnp.float32)
  index = jnp.asarray([0, 1, 1], jnp.int32)

  def pooled(f, b):
    return roi_align_lib.roi_align(f, b, index, (3, 3), 0.5, 2, True, implementation="reference")

  text = jax.jit(pooled).lower(features, boxes).compile().as_text()
  assert "conditional(" in text
  with_barrier = pooled(features, boxes)
  monkeypatch.setattr(fusion_barrier, "materialize", lambda values, keep: values)
  roi_align_lib._roi_align_jit.clear_cache()  # pylint: disable=protected-access
  request.addfinalizer(roi_align_lib._roi_align_jit.clear_cache)  # no trace without the barrier outlives the test
  np.testing.assert_allclose(with_barrier, pooled(features, boxes), rtol=1e-6, atol=1e-6)  # fusion rounds apart
