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
  config = f"--config={os.path.join(REPO, 'configs', name)}:smoke"
  # The multi-head run also takes the transfer section (its head found by tracing the model on both inputs).
  extra = ["--config.transfer.backbone_lr_factor=0.5"] if name == "multi_io_digits.py" else []
  result = harness.run_main(str(tmp_path / "tfds"), config, f"--workdir={workdir}", *STEPS, *extra)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "done: 6 steps (completed)" in result.stdout
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["dataset"] == dataset and summary["steps"] == 6
  final = summary["final_eval"]
  assert final["num_examples"] == num_eval
  assert all(math.isfinite(final[m]) for m in metrics), final
  assert os.path.getsize(os.path.join(workdir, "confusion_matrix.png")) > 0

  if name == "multi_io_digits.py":  # --mode=eval goes through the task (it used to reach the classifier ensemble)
    evaluated = harness.run_main(str(tmp_path / "tfds"), config, f"--workdir={workdir}", "--mode=eval", *extra)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "eval of step 6 on 2000 examples" in evaluated.stdout
    report = json.load(open(os.path.join(workdir, "eval.json")))
    assert report["step"] == 6 and report["metrics"]["loss"] == pytest.approx(final["loss"], rel=1e-5)
    other = harness.run_main(str(tmp_path / "tfds"), config, f"--workdir={workdir}", "--mode=eval")
    assert other.returncode == 2 and "laid out differently" in other.stderr and "Traceback" not in other.stderr
