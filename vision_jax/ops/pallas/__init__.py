"""Pallas kernels for NMS and RoIAlign, and the lowering choice they share."""

from jax.experimental.pallas import triton as pltriton

from vision_jax.ops import dispatch


def gpu_params() -> pltriton.CompilerParams | None:
  """Triton compiler parameters when JAX's default backend is a GPU, else None (the backend's default).

  Which lowering `pl.pallas_call` picks on GPU without parameters depends on the jax version: jax 0.10.2
  defaults to Mosaic GPU (`jax_pallas_use_mosaic_gpu`), while the jax 0.11.2 GPU machine this was measured
  on lowered through Triton. These kernels index whole-array refs at dynamic row offsets, which Triton
  lowers and Mosaic GPU's bulk copies (at most 256 elements per dimension) refuse, so they name Triton.
  """
  return pltriton.CompilerParams() if dispatch.on_gpu() else None
