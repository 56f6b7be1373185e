"""Benchmark rows of the task families: each family times its train step (and eval) beside a PyTorch peer of the
same architecture, every measurement in a fresh process (`vision_jax.bench.worker --framework=family`).

A family adds a module `vision_jax/bench/<family>.py` and one line to `FAMILIES` below. The module defines

    measure(framework: str, steps: int) -> dict

for framework "ours" or "torch" (torch imported inside the function), returning at least
    "what":           the model and input, e.g. "unet_same b8 96x96x1 11 classes",
    "unit":           what one example is ("images", "pairs", ...),
    "train_per_sec":  examples per second of the full train step (forward, backward, update; median of `steps`),
and optionally "eval_per_sec", "compile_sec" and "note".
Our side jits its train step with `backends.cpu.rewrites.jit_train_step` and its forward or predict step with
`jit_step`, as the loop does, so a row times what `python -m vision_jax.main` compiles.
"""

from __future__ import annotations

import importlib
from typing import Any

# family name -> module defining `measure`
FAMILIES: dict[str, str] = {
    "detection": "vision_jax.bench.detection",
    "embedding": "vision_jax.bench.embedding",
    "gan": "vision_jax.bench.gan",
    "rcnn": "vision_jax.bench.rcnn",
    "segmentation": "vision_jax.bench.segmentation",
    "sliding_window": "vision_jax.bench.sliding_window",
}
# Rows that take minutes on 2 cores: run only when named (`--families=rcnn_resnet50`), not in the default list.
OPT_IN_FAMILIES: dict[str, str] = {
    "rcnn_resnet50": "vision_jax.bench.rcnn_resnet50",
}


def measure(family: str, framework: str, steps: int) -> dict[str, Any]:
  """Runs one family's measurement in this process (the worker calls it).

  Args:
    family: a key of `FAMILIES` or `OPT_IN_FAMILIES`.
    framework: "ours" or "torch".
    steps: timed steps (the family's default when 0).

  Returns:
    The family module's figures.
  """
  known = {**FAMILIES, **OPT_IN_FAMILIES}
  if family not in known:
    raise ValueError(f"unknown bench family {family!r}; known: {', '.join(sorted(known))}")
  return importlib.import_module(known[family]).measure(framework, steps)
