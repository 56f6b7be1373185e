"""The benchmark measures what it claims: peers mirror our architectures, and the harness runs end to end."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from vision_jax import models
from vision_jax.bench import ours, peer_keras, peer_torch, timing, worker

os.environ.setdefault("KERAS_BACKEND", "jax")

_SHAPES = {"lenet5_relu": (28, 1), "simple_cnn": (32, 3), "resnet18_cifar": (32, 3)}


def _our_param_count(name: str) -> int:
  size, channels = _SHAPES[name]
  variables = jax.eval_shape(lambda: models.get(name, num_classes=10).init(
      jax.random.PRNGKey(0), np.zeros((1, size, size, channels), np.float32)))
  return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize("name", sorted(_SHAPES))
def test_keras_peer_has_our_architecture(name):
  import keras  # pylint: disable=g-import-not-at-top
  size, channels = _SHAPES[name]
  net = peer_keras._build(keras, name, (size, size, channels), 10)  # pylint: disable=protected-access
  trainable = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
  assert trainable == _our_param_count(name)


@pytest.mark.parametrize("name", sorted(_SHAPES))
def test_torch_peer_has_our_architecture(name):
  torch = pytest.importorskip("torch")
  size, channels = _SHAPES[name]
  net = peer_torch._build(name, channels, 10)  # pylint: disable=protected-access
  net(torch.zeros(1, channels, size, size))  # materialize lazy layers
  assert sum(p.numel() for p in net.parameters()) == _our_param_count(name)


def test_our_step_figures_are_finite_and_positive():
  figures = ours.bench_model("lenet5_relu", batch=16, resolution=28, channels=1, dtype="float32", steps=2,
                             warmup=1, tuned=True)
  for key in ("train_images_per_sec", "eval_images_per_sec", "compile_sec", "peak_host_mib"):
    assert np.isfinite(figures[key]) and figures[key] > 0


def test_jax_timings_carry_the_state_from_step_to_step():
  step = jax.jit(lambda count, total: (count + 1, total + count, -count))  # (*next_state, loss)
  state = [jax.numpy.int32(0), jax.numpy.int32(0)]
  seen = []
  result = timing.jax_timings(step, state, lambda current: seen.append(int(current[0])) or current[0], 2, 3)
  assert [int(x) for x in state] == [5, 10]  # 2 warm-up + 3 timed steps: count 5, total 0+1+2+3+4
  assert seen == [5] * 5 and set(result) == {"train", "eval", "note"} and result["note"].startswith("jax ")
  assert result["train"]["median_step_sec"] > 0 and "eval" not in timing.jax_timings(step, state, None, 1, 1)


def test_worker_prints_one_json_result(capsys):
  worker.main(["--framework=keras", "--model=lenet5_relu", "--batch=8", "--resolution=28", "--channels=1",
               "--steps=1", "--warmup=1"])
  lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("BENCH_RESULT ")]
  assert len(lines) == 1 and '"train_images_per_sec"' in lines[0]



def test_no_models_runs_the_other_sections(tmp_path):
  # `--models=` times only the other sections (here the input pipelines); it used to end in a traceback
  # (the pipeline's ratio to the fastest train step took max() of no steps).
  out = tmp_path / "bench.json"
  proc = subprocess.run([sys.executable, "-m", "vision_jax.bench", "--models=", "--families=", "--ops=false",
                         f"--json={out}"], capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  results = json.loads(out.read_text())
  assert results["train"] == [] and results["pipeline"]["pipeline_images_per_sec"] > 0
  assert "train img/s" not in proc.stdout and "the fastest train step" not in proc.stdout


@pytest.mark.parametrize("flag,named", [("--models=lenet5_relu,no_such_net", "no_such_net"),
                                        ("--families=no_such_family", "no_such_family"),
                                        ("--json=/no/such/dir/bench.json", "/no/such/dir")])
def test_bad_flags_end_in_one_error_line_before_any_timing(flag, named):
  proc = subprocess.run([sys.executable, "-m", "vision_jax.bench", "--models=", flag],
                        capture_output=True, text=True, check=False)
  lines = [l for l in proc.stderr.splitlines() if l.strip() and "WARNING" not in l]
  assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0]
  assert proc.stdout == ""


def test_ops_bench_rejects_zero_repeats():
  # A median of no timings used to end in a StatisticsError traceback.
  proc = subprocess.run([sys.executable, "-m", "vision_jax.bench.ops", "--repeats=0"],
                        capture_output=True, text=True, check=False)
  assert proc.returncode == 2 and "error: --repeats=0; use 1 or more" in proc.stderr and "Traceback" not in proc.stderr
