"""The Pallas kernels lower for CUDA from a CPU-only machine (the Triton lowering runs without a GPU).

The first GPU session found that both kernels, tested only in interpret mode until then, failed to lower on
a GPU: NMS sliced values (no `slice` rule in Triton), RoIAlign's integer division mixed i32 and i1, and on
jax 0.10 `pl.pallas_call` picked Mosaic GPU, whose bulk copies refuse these whole-array blocks. These tests
lower every kernel path for the 'cuda' platform (jax's cross-platform lowering) under both defaults of
`jax_pallas_use_mosaic_gpu`, with shapes that are not powers of two, so each of those failures fails here.
Running them is left to `python -m vision_jax.tools.accel_check` on a GPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import ops

TRITON_CALL = 'xla.gpu.triton'


@pytest.fixture(params=[True, False], ids=['mosaic_default', 'triton_default'])
def as_gpu(request, monkeypatch):
  """Traces as if JAX's default backend were a GPU, under either default Pallas GPU lowering.

  The caches are cleared on both sides: a jitted op traced here holds the compiled-kernel branch, which
  later CPU tests in the same worker must not reuse.
  """
  jax.clear_caches()
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  before = jax.config.jax_pallas_use_mosaic_gpu
  jax.config.update('jax_pallas_use_mosaic_gpu', request.param)
  yield
  jax.config.update('jax_pallas_use_mosaic_gpu', before)
  monkeypatch.undo()
  jax.clear_caches()


def _cuda_text(fn, *args) -> str:
  return jax.jit(fn).trace(*args).lower(lowering_platforms=('cuda',)).as_text()


def _boxes(n: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  xy = rng.uniform(0, 100, (n, 2))
  return np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], 1).astype(np.float32)


@pytest.mark.parametrize('n', [300, 1000])
def test_nms_kernels_lower_through_triton(as_gpu, n):
  del as_gpu
  boxes, scores = _boxes(n), np.random.default_rng(1).uniform(size=n).astype(np.float32)
  classes = np.arange(n) % 3
  text = _cuda_text(lambda b, s: ops.nms(b, s, 0.5, 100), boxes, scores)
  assert TRITON_CALL in text
  text = _cuda_text(lambda b, s, c: ops.batched_nms(b, s, c, 0.5, 100), boxes, scores, classes)
  assert TRITON_CALL in text


def test_nms_kernel_lowers_under_x64(as_gpu):
  del as_gpu
  boxes, scores = _boxes(200), np.linspace(1, 0, 200, dtype=np.float32)
  with jax.enable_x64(True):
    assert TRITON_CALL in _cuda_text(lambda b, s: ops.nms(b, s, 0.5, 50), boxes, scores)


@pytest.mark.parametrize('chans', [16, 24])  # 24: the wrapper pads channels to a power of two for Triton
def test_roi_align_forward_and_backward_lower_through_triton(as_gpu, chans):
  del as_gpu
  feats = jnp.ones((2, 20, 27, chans), jnp.float32)
  boxes, batch_index = jnp.asarray(_boxes(12) * 0.2), jnp.arange(12) % 2

  def loss(f):
    return jnp.sum(ops.roi_align(f, boxes, batch_index, (7, 7), 1.0, 2, True) ** 2)

  assert TRITON_CALL in _cuda_text(jax.grad(loss), feats)


def test_multilevel_roi_align_lowers_through_triton(as_gpu):
  del as_gpu
  pyramid = [jnp.ones((1, 64 // 2**i, 64 // 2**i, 8), jnp.float32) for i in range(4)]
  boxes, batch_index = jnp.asarray(_boxes(10) * 2.0), jnp.zeros(10, jnp.int32)

  def loss(levels):
    return jnp.sum(ops.multilevel_roi_align(levels, boxes, batch_index, 7)[0] ** 2)

  assert TRITON_CALL in _cuda_text(jax.grad(loss), pyramid)
