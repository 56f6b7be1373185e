"""Runs the benchmark suite and prints a table of ours vs peers, with ratios; writes JSON.

    python -m vision_jax.bench                       # lenet5_relu b256, simple_cnn b128, resnet18_cifar b128,
                                                     # keras_resnet50 224x224 b32, input pipeline, detection ops
    python -m vision_jax.bench --models=lenet5_relu --peers=torch --steps=20 --json=bench.json
    python -m vision_jax.bench --compare_untuned     # also ours without the XLA:CPU fixes (before/after)

The input rows: the classification pipeline on the embedded digits, and the detection input (digit_scenes
letterboxed to 128 with flip/zoom/translate moving boxes and masks) as host and device examples/s.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from typing import Any

from absl import app, flags

from vision_jax.bench import families, peer_keras, peer_torch
from vision_jax.errors import UserError

# name -> (batch, resolution, channels, timed steps)
DEFAULT_SUITE = {"lenet5_relu": (256, 28, 1, 30), "simple_cnn": (128, 32, 3, 10),
                 "resnet18_cifar": (128, 32, 3, 6), "keras_resnet50": (32, 224, 3, 3)}

_MODELS = flags.DEFINE_list("models", list(DEFAULT_SUITE), "registered model names to benchmark")
_BATCH = flags.DEFINE_integer("batch", 0, "batch size (0: the suite's per-model default)")
_RESOLUTION = flags.DEFINE_integer("resolution", 0, "square input size (0: per-model default)")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "computation dtype")
_STEPS = flags.DEFINE_integer("steps", 0, "timed steps (0: per-model default); the median is reported")
_PEERS = flags.DEFINE_list("peers", ["torch", "keras"], "peer frameworks to run when installed")
_UNTUNED = flags.DEFINE_bool("compare_untuned", False, "also run ours without vision_jax.backends.cpu.rewrites fixes")
_PIPELINE = flags.DEFINE_bool("pipeline", True, "measure the input pipeline on the embedded digits")
_OPS = flags.DEFINE_bool("ops", True, "time NMS and RoIAlign (vision_jax.bench.ops)")
_FAMILIES = flags.DEFINE_list("families", None,
                              "task-family rows (vision_jax.bench.families; default: all but OPT_IN_FAMILIES)")
_JSON = flags.DEFINE_string("json", "bench_results.json", "where to write all figures")


def _run_worker(framework: str, **kwargs: Any) -> dict[str, Any]:
  cmd = [sys.executable, "-m", "vision_jax.bench.worker", f"--framework={framework}"]
  for key, value in kwargs.items():
    if value is True:
      cmd.append(f"--{key}")
    elif value is not False and value is not None:
      cmd.append(f"--{key}={value}")
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  for line in proc.stdout.splitlines():
    if line.startswith("BENCH_RESULT "):
      return json.loads(line[len("BENCH_RESULT "):])
  tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
  return {"error": tail}


def _installed(module: str) -> bool:
  return importlib.util.find_spec(module) is not None


def _peer_frameworks(model: str) -> list[str]:
  has = {"torch": peer_torch.MODELS, "keras": peer_keras.MODELS}
  return [p for p in _PEERS.value if p in has and model in has[p] and _installed(p)]


def _fmt(value: Any, digits: int = 1) -> str:
  return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else "-"


def _family_rows(names: list[str], steps: int) -> list[dict[str, Any]]:
  """Times each task family (ours, then torch when installed) and prints their table."""
  rows, results = [], []
  for family in names:
    runs = {"ours": _run_worker("family", family=family, peer="ours", steps=steps)}
    if "torch" in _PEERS.value and _installed("torch"):
      runs["torch"] = _run_worker("family", family=family, peer="torch", steps=steps)
    results.append({"family": family, "runs": runs})
    ours = runs["ours"].get("train_per_sec")
    for name, run in runs.items():
      rate = run.get("train_per_sec")
      ratio = ours / rate if ours and rate and name != "ours" else None
      rows.append((family, run.get("what", ""), name, run.get("unit", ""), _fmt(rate), _fmt(run.get("eval_per_sec")),
                   _fmt(run.get("compile_sec")), _fmt(ratio, 2) if ratio else ("" if name == "ours" else "-"),
                   run.get("error", run.get("note", ""))))
  header = ("family", "what", "framework", "unit", "train /s", "eval /s", "compile s", "ours/peer", "note")
  widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
  print("\ntask families (python -m vision_jax.bench --families=...):")
  for row in [header] + rows:
    print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
  return results


def _check_flags() -> None:
  """Raises UserError for flags that would otherwise fail one row at a time, or only after all the timing."""
  from vision_jax import models  # pylint: disable=import-outside-toplevel  (the registry imports every family)
  unknown = [m for m in _MODELS.value if m not in models.names()]
  if unknown:
    raise UserError(f"--models: unknown model {', '.join(unknown)}; use registered names "
                    f"(`vision_jax.models.names()`), e.g. --models={','.join(DEFAULT_SUITE)}")
  known_families = {**families.FAMILIES, **families.OPT_IN_FAMILIES}
  unknown = [f for f in _FAMILIES.value or [] if f not in known_families]
  if unknown:
    raise UserError(f"--families: unknown family {', '.join(unknown)}; use some of {', '.join(sorted(known_families))}")
  for flag in (_BATCH, _RESOLUTION, _STEPS):
    if flag.value < 0:
      raise UserError(f"--{flag.name}={flag.value}; use a positive number, or 0 for the per-model default")
  json_dir = os.path.dirname(os.path.abspath(_JSON.value))
  if not os.path.isdir(json_dir):
    raise UserError(f"--json={_JSON.value}: the directory {json_dir} does not exist; create it or write elsewhere")


def main(argv: list[str]) -> None:
  del argv
  try:
    _check_flags()
  except UserError as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)
  rows, results = [], {"train": [], "pipeline": None, "ops": None}
  for model in _MODELS.value:
    batch, resolution, channels, steps = DEFAULT_SUITE.get(model, (32, 32, 3, 5))
    shape = dict(model=model, batch=_BATCH.value or batch, resolution=_RESOLUTION.value or resolution,
                 channels=channels, dtype=_DTYPE.value, steps=_STEPS.value or steps)
    runs = {"ours": _run_worker("ours", **shape)}
    if _UNTUNED.value:
      runs["ours_untuned"] = _run_worker("ours", no_tuning=True, **shape)
    for peer in _peer_frameworks(model):
      runs[peer] = _run_worker(peer, **shape)
    results["train"].append({"shape": shape, "runs": runs})
    ours = runs["ours"].get("train_images_per_sec")
    for name, run in runs.items():
      rate = run.get("train_images_per_sec")
      ratio = ours / rate if ours and rate and name != "ours" else None
      rows.append((model, f"b{shape['batch']} {shape['resolution']}px {shape['dtype']}", name,
                   _fmt(rate), _fmt(run.get("eval_images_per_sec")), _fmt(run.get("compile_sec")),
                   _fmt(run.get("first_step_sec")), _fmt(run.get("peak_host_mib"), 0),
                   _fmt(ratio, 2) if ratio else ("" if name == "ours" else "-"), run.get("error", "")))
  header = ("model", "shape", "framework", "train img/s", "eval img/s", "compile s", "1st step s", "peak MiB",
            "ours/peer", "error")
  widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
  for row in [header] + rows if rows else []:  # `--models=` times only the pipeline, ops and family rows
    print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
  if _PIPELINE.value:
    results["pipeline"] = _run_worker("pipeline", batch=256, steps=100)
    fastest = max((r["runs"]["ours"].get("train_images_per_sec") or 0 for r in results["train"]),
                  default=0) or None
    rate = results["pipeline"].get("pipeline_images_per_sec")
    print(f"\ninput pipeline (embedded digits, batch 256): {_fmt(rate)} images/s"
          + (f" = {rate / fastest:.1f}x the fastest train step above" if rate and fastest else ""))
    results["scenes_pipeline"] = scenes = _run_worker("scenes_pipeline", batch=64, resolution=128, steps=20)
    print(f"detection input (digit_scenes letterboxed to 128, batch 64): host {_fmt(scenes.get('host_examples_per_s'))}"
          f" examples/s, box- and mask-aware device augmentation {_fmt(scenes.get('device_examples_per_s'))} "
          f"examples/s{' ' + scenes['error'] if 'error' in scenes else ''}")
  if _OPS.value:
    proc = subprocess.run([sys.executable, "-m", "vision_jax.bench.ops", "--repeats", "3"],
                          capture_output=True, text=True, check=False)
    results["ops"] = proc.stdout
    print("\ndetection ops (python -m vision_jax.bench.ops):\n" + proc.stdout.rstrip())
  family_names = list(families.FAMILIES) if _FAMILIES.value is None else _FAMILIES.value
  if family_names:
    results["families"] = _family_rows(family_names, _STEPS.value)
  with open(_JSON.value, "w") as f:
    json.dump(results, f, indent=1)
  print(f"\nwrote {os.path.abspath(_JSON.value)}")


if __name__ == "__main__":
  app.run(main)
