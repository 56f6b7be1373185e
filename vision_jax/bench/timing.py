"""Timing and memory helpers shared by our benchmark worker and the peers."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Any, Callable


def time_steps(step: Callable[[], Any], sync: Callable[[Any], Any], warmup: int, steps: int) -> dict[str, float]:
  """Times `steps` calls of `step` after `warmup` calls, synchronizing after each.

  Args:
    step: runs one step and returns something `sync` can wait on.
    sync: blocks until a step's result is ready (e.g. `jax.block_until_ready`).
    warmup: untimed calls first (the first one includes compilation; its time is reported separately).
    steps: timed calls.

  Returns:
    {"first_step_sec", "median_step_sec", "min_step_sec"}.
  """
  t = time.perf_counter()
  sync(step())
  first = time.perf_counter() - t
  for _ in range(max(warmup - 1, 0)):
    sync(step())
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    sync(step())
    times.append(time.perf_counter() - t)
  return {"first_step_sec": first, "median_step_sec": statistics.median(times), "min_step_sec": min(times)}


def torch_timings(torch: Any, train_step: Callable[[], Any], eval_step: Callable[[], Any] | None,
                  steps: int) -> dict[str, Any]:
  """A PyTorch peer's timed train (and eval) steps with the note naming torch's version and threads.

  Args:
    torch: the imported torch module (peers import it lazily).
    train_step, eval_step: run one step each (eager torch is synchronous); eval_step may be None.
    steps: timed steps after 3 warm-up calls.

  Returns:
    {"train": time_steps(...), "eval": ... (when eval_step is given), "note": ...}.
  """
  result = {"train": time_steps(train_step, lambda x: x, 3, steps)}
  if eval_step is not None:
    result["eval"] = time_steps(eval_step, lambda x: x, 3, steps)
  result["note"] = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
  return result


def jax_timings(train_step: Callable[..., Any], state: list[Any], eval_step: Callable[[list[Any]], Any] | None,
                warmup: int, steps: int) -> dict[str, Any]:
  """Our timed train (and eval) steps with the note naming jax's version.

  Args:
    train_step: the jitted step, `train_step(*state) -> (*next_state, loss)`.
    state: what the step carries, in its argument order (updated in place as the steps run).
    eval_step: `eval_step(state) -> output` on the current state, or None.
    warmup: untimed calls of each first (the first includes compilation).
    steps: timed calls of each.

  Returns:
    {"train": time_steps(...), "eval": ... (when eval_step is given), "note": ...}.
  """
  import jax  # pylint: disable=import-outside-toplevel  (the peers' workers never import jax)

  def step():
    *state[:], loss = train_step(*state)
    return loss

  result = {"train": time_steps(step, jax.block_until_ready, warmup, steps)}
  if eval_step is not None:
    result["eval"] = time_steps(lambda: eval_step(state), jax.block_until_ready, warmup, steps)
  result["note"] = f"jax {jax.__version__}"
  return result


def peak_host_memory_mib() -> float:
  """Peak resident memory of this process so far, MiB."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def family_row(what: str, batch: int, result: dict[str, Any], unit: str = "images") -> dict[str, Any]:
  """A task family's bench row (`vision_jax.bench.families`) from timed train and eval steps of `batch` examples.

  Args:
    what: the model and input, e.g. "unet_small_same b8 64x64x1".
    batch: examples per step.
    result: {"train": time_steps(...), "eval": time_steps(...), "note": str}.
    unit: what one example is.
  """
  return {"what": what, "unit": unit, "train_per_sec": batch / result["train"]["median_step_sec"],
          "eval_per_sec": batch / result["eval"]["median_step_sec"], "compile_sec": result["train"]["first_step_sec"],
          "note": result["note"]}
