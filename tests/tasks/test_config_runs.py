"""One short run through `python -m vision_jax.main` per config of the multi-input / 1D / 3D experiments.

The 1D and 3D runs (10-20 s each on CPU) are marked slow; in CI their task's steps run in-process in
test_array_classification.py.
"""

import json
import math
import os

import pytest

from tests.training import harness

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = ["--config.num_train_steps=6", "--config.eval_every_steps=6", "--config.checkpoint.every_steps=6"]
CASES = {
    "multi_io_digits.py": ("mnist_pairs", 2000, ["loss", "digit_sum_mae", "first_digit_accuracy",
                                                  "same_digit_accuracy", "same_digit_auc"]),
    "ecg1d.py": ("synthetic_ecg", 1000, ["loss", "accuracy"]),
    "volumes3d.py": ("synthetic_volumes", 1000, ["loss", "accuracy"]),
}


@pytest.mark.parametrize("name", [pytest.param("ecg1d.py", marks=pytest.mark.slow), "multi_io_digits.py",
                                  pytest.param("volumes3d.py", marks=pytest.mark.slow)])
def test_smoke_run_through_main(name, tmp_path):
  dataset, num_eval, metrics = CASES[name]
  workdir = str(tmp_path / "run")
  result = harness.run_main(str(tmp_path / "tfds"), f"--config={os.path.join(REPO, 'configs', name)}:smoke",
                            f"--workdir={workdir}", *STEPS)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "done: 6 steps (completed)" in result.stdout
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["dataset"] == dataset and summary["steps"] == 6
  final = summary["final_eval"]
  assert final["num_examples"] == num_eval
  assert all(math.isfinite(final[m]) for m in metrics), final
  assert os.path.getsize(os.path.join(workdir, "confusion_matrix.png")) > 0
