"""A detection-shaped task (`toy_detection`): the COCO mAP that the loop's evaluation reports through a
`GatherEvaluator` equals `coco_evaluate` of the same predictions gathered by hand, with the ground truth read
from the dataset itself; and an evaluation by 2 local JAX processes reports the same numbers."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import tests.tasks.toy_tasks  # noqa: F401  (registers toy_detection)
from tests.tasks import in_process
from tests.training import harness
from vision_jax.evaluation.detection_coco import STAT_NAMES, coco_evaluate
from vision_jax.train_lib import setup as setup_lib

CONFIG = "tests/tasks/configs/toy_detection.py:smoke"
OVERRIDES = {"input__batch_size": 8, "input__eval_batch_size": 500, "num_train_steps": 200}
PREDICTIONS = ("pred_boxes", "pred_scores", "pred_labels", "pred_valid")


def _train_and_evaluate(workdir: str):
  """A toy detector trained 200 steps in-process and saved to `workdir`, and the loop's evaluation of it."""
  s = setup_lib.setup(in_process.load_config(CONFIG, **OVERRIDES), workdir)
  state, step_fn, batches = s.init_state(), in_process.compile_train_step(s), in_process.train_batches(s)
  for _ in range(s.total_steps):
    state, _ = step_fn(state, next(batches))
  eval_step = setup_lib.compile_eval_step(s)
  metrics = setup_lib.run_evaluation(s, eval_step, state)
  s.checkpointer.save(int(state.step), state, {"step": int(state.step)})
  s.checkpointer.close()
  return s, state, eval_step, metrics


def _reference_coco(source, predictions) -> dict[str, float]:
  """`coco_evaluate` of hand-gathered predictions against the ground truth of every record of `source`, with
  image ids from 1000 and category ids label + 1 (COCO ids are arbitrary)."""
  images, annotations, detections = [], [], []
  for i in range(len(source)):
    record = source[i]
    images.append({"id": 1000 + i})
    for box, label in zip(record["boxes"][:int(record["num_objects"])], record["box_labels"]):
      x1, y1, x2, y2 = map(float, box)
      annotations.append({"id": len(annotations) + 1, "image_id": 1000 + i, "category_id": int(label) + 1,
                          "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    for box, score, label, valid in zip(*(predictions[k][i] for k in PREDICTIONS)):
      if valid:
        x1, y1, x2, y2 = map(float, box)
        detections.append({"image_id": 1000 + i, "category_id": int(label) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                           "score": float(score)})
  categories = [{"id": c + 1} for c in range(10)]
  return coco_evaluate({"images": images, "annotations": annotations, "categories": categories}, detections)


@pytest.mark.multiprocess
def test_loop_evaluation_equals_coco_evaluate_in_one_and_in_two_processes(tmp_path):
  workdir = str(tmp_path / "run")
  s, state, eval_step, metrics = _train_and_evaluate(workdir)

  # 1 process: the loop's metrics are coco_evaluate of the predictions gathered by hand.
  rows = {k: [] for k in PREDICTIONS}
  for batch in setup_lib.eval_batches(s):
    outputs = jax.device_get(eval_step(state, batch))
    real = np.asarray(outputs["mask"], bool)
    for key in PREDICTIONS:
      rows[key].append(outputs[key][real])
  predictions = {k: np.concatenate(v) for k, v in rows.items()}
  assert len(predictions["pred_scores"]) == len(s.eval_source) == metrics["num_examples"] == 2000
  valid = predictions["pred_valid"]
  assert 0 < valid.sum() < valid.size  # the validity mask drops some padded predictions
  want = _reference_coco(s.eval_source, predictions)
  assert {k: metrics[k] for k in STAT_NAMES} == want
  assert 0 < metrics["AR100"] < 1 and 0 < metrics["AP50"] < 1, metrics

  # 2 processes (1 device each), `--mode=eval` of the saved state: the same numbers.
  env = in_process.subprocess_env(str(tmp_path / "tfds"))
  env.update(DEVICES_PER_PROCESS="1", PORT=str(harness.free_port()), PYTHON=sys.executable)
  result = subprocess.run(["bash", "launch/local_cpu.sh", "2", f"--config={CONFIG}", f"--workdir={workdir}",
                           "--mode=eval", *in_process.override_flags(**OVERRIDES)],
                          cwd=in_process.REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.load(open(os.path.join(workdir, "eval.json")))
  assert report["step"] == int(state.step)
  two = report["metrics"]
  assert two["num_examples"] == 2000
  assert {k: two[k] for k in STAT_NAMES} == {k: metrics[k] for k in STAT_NAMES}
  assert two["loss"] == pytest.approx(metrics["loss"], rel=1e-6)  # a cross-device sum: rounding order differs
