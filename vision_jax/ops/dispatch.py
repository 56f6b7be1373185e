"""Choosing between a Pallas kernel and its jnp reference."""

import jax

from vision_jax.errors import UserError

GPU_BACKENDS = ('gpu', 'cuda', 'rocm')
KERNEL_BACKENDS = GPU_BACKENDS + ('tpu',)


def on_gpu() -> bool:
  """Whether JAX's default backend is a GPU."""
  return jax.default_backend() in GPU_BACKENDS


def resolve_implementation(implementation: str) -> tuple[bool, bool]:
  """Maps 'auto' | 'reference' | 'pallas' to (use_pallas, interpret).

  'auto' picks the kernel on GPU/TPU and the reference elsewhere; 'pallas' forces the kernel, in interpret
  mode on CPU (for tests).
  """
  backend = jax.default_backend()
  if implementation == 'reference':
    return False, False
  if implementation == 'pallas':
    return True, backend == 'cpu'
  if implementation == 'auto':
    return backend in KERNEL_BACKENDS, False
  raise UserError(f'unknown implementation {implementation!r}: use "auto", "reference" or "pallas".')
