"""Every registered task family through the loop's parts, in-process, on a small config: setup, init, one
compiled train step, one evaluation, the task's reports, a checkpoint round trip and `--mode=predict`.

A new task family must add a config here (`CONFIGS`); `test_every_registered_task_has_a_config` fails until
it does.
"""

import math

import jax
import numpy as np
import pytest
from PIL import Image

import tests.tasks.toy_tasks  # noqa: F401  (registers toy_gan and toy_detection)
from tests.tasks import in_process
from vision_jax import tasks
from vision_jax.errors import ConfigError
from vision_jax.train_lib import setup as setup_lib

SMALL = {"input__batch_size": 8, "num_train_steps": 2}
# task -> (config spec, overrides, what --mode=predict takes: "png", "npy" or None for a one-line ConfigError)
CONFIGS = {
    "classification": [("configs/mnist_lenet.py:smoke", {"dataset__eval_split": "test[:64]",
                                                         "input__eval_batch_size": 32}, "png"),
                       ("configs/ecg1d.py:smoke", {"input__eval_batch_size": 500}, "npy")],
    "multi_head": [("configs/multi_io_digits.py:smoke", {"input__eval_batch_size": 500}, None)],
    "toy_gan": [("tests/tasks/configs/toy_gan.py:smoke", {}, None)],
    "toy_detection": [("tests/tasks/configs/toy_detection.py:smoke", {}, None)],
    "embedding": [("configs/siamese_digits.py:smoke", {"dataset__eval_split": "test[:200]",
                                                      "embedding__num_episodes": 20}, "png")],
    "segmentation": [("configs/seg_unet.py:smoke", {"input__image_size": 32, "input__resize": "letterbox",
                                                    "input__eval_batch_size": 500}, "png")],
    "detection": [("configs/det_ssd_digits.py:smoke", {"input__image_size": 48, "input__resize": "letterbox",
                                                       "input__eval_batch_size": 500}, "png")],
    "image_translation": [("configs/gan_pix2pix.py:smoke", {"input__eval_batch_size": 500}, None)],
    "progan": [("configs/gan_progan.py:smoke", {}, None)],
    "gan": [("configs/gan_cgan.py:smoke", {"gan__generator_width": 8, "gan__discriminator_width": 8}, None)],
    "localization": [("configs/localization_digits.py:smoke,keypoints", {"input__image_size": 32,
                                                                        "input__eval_batch_size": 500}, "png")],
    "sliding_window": [("configs/sliding_window_digits.py:smoke", {"input__image_size": 48,
                                                                    "input__resize": "letterbox",
                                                                    "sliding_window__window_sides": "28",
                                                                    "input__eval_batch_size": 500}, "png")],
    "region_cnn": [("configs/det_rcnn_classic_digits.py:kind=rcnn,smoke", {}, "png"),
                   ("configs/det_rcnn_classic_digits.py:kind=fast_rcnn,smoke", {}, "png")],
    "two_stage": [("configs/det_rcnn_digits.py:variant=fpn,smoke", {"input__image_size": 64,
                                                                     "input__resize": "letterbox"}, "png")],
}
# Compiling and evaluating the two-stage detector takes minutes on 2 cores; tests/tasks/test_two_stage.py covers its
# train step, evaluation and predict in CI, and this full pass runs with the slow tests.
SLOW_TASKS = ("two_stage",)
CASES = [pytest.param(task, *case, marks=[pytest.mark.slow] if task in SLOW_TASKS else [])
         for task, cases in CONFIGS.items() for case in cases]


def test_every_registered_task_has_a_config():
  missing = sorted(set(tasks.names()) - set(CONFIGS))
  assert not missing, f"add a small config for task(s) {missing} to CONFIGS in {__file__}"


def _finite_tree(tree) -> bool:
  return all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(tree))


def _predict_input(kind: str, spec, path) -> str:
  """A file of the dataset's stored example shape, as --mode=predict reads it."""
  rng = np.random.default_rng(0)
  shape = tuple(spec.image_shape)
  if kind == "png":
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels[..., 0] if shape[-1] == 1 else pixels).save(f"{path}.png")
    return f"{path}.png"
  np.save(f"{path}.npy", rng.normal(size=shape).astype(np.float32))
  return f"{path}.npy"


@pytest.mark.parametrize("task_name,spec,overrides,predicts", CASES, ids=[c.values[1].split("/")[-1] for c in CASES])
def test_task_runs_through_the_loop_parts(task_name, spec, overrides, predicts, data_dir, tmp_path):
  config = in_process.load_config(spec, data_dir, **SMALL, **overrides)
  assert config.task == task_name
  s = setup_lib.setup(config, str(tmp_path / "run"))
  task = s.task
  initial = in_process.host_copy(s.init_state())
  networks = list(task.networks())
  assert set(initial.params) == set(initial.opt_state) == set(networks)  # pytrees sort dict keys
  # summary.json's "model": the zoo name the task built from, or the classes of the networks it built itself.
  model_name = task.model_name()
  if task.builds_own_networks:
    assert all(f"{n}={type(m).__name__}" in model_name for n, m in task.networks().items()), model_name
  else:
    assert model_name == config.model.name

  # One compiled train step, as the loop runs it.
  state, metrics = in_process.compile_train_step(s)(s.init_state(), next(in_process.train_batches(s)))
  metrics = jax.device_get(metrics)
  assert metrics and all(np.ndim(v) == 0 and math.isfinite(float(v)) for v in metrics.values()), metrics
  assert int(state.step) == 1
  for name in networks:
    assert _finite_tree(state.params[name]), f"network {name!r} has non-finite parameters"
  after = jax.device_get(state)
  changed = [n for n in networks if not all(np.array_equal(a, b) for a, b in  # warmup may make the first lr 0
                                            zip(jax.tree.leaves((initial.params[n], initial.opt_state[n])),
                                                jax.tree.leaves((after.params[n], after.opt_state[n]))))]
  assert changed, "the train step updated no network's parameters or optimizer state"

  # One evaluation pass through the task's evaluators.
  results = setup_lib.run_evaluation(s, setup_lib.compile_eval_step(s), state)
  for name, value in results.items():
    assert isinstance(value, (int, float, np.ndarray, np.number)), (name, type(value))
  best = task.best_metric[0]
  assert best in results and np.ndim(results[best]) == 0 and math.isfinite(results[best]), (best, results)
  summary = {}
  for path in task.on_evaluation(str(tmp_path), state, 1, results) + task.write_reports(str(tmp_path), results,
                                                                                         summary):
    assert (tmp_path / path).stat().st_size > 0

  # Checkpoint round trip through the setup's checkpointer, into the abstract state.
  s.checkpointer.save(1, state, {"step": 1})
  s.checkpointer.wait()
  restored, meta = s.checkpointer.restore_latest(s.abstract_state)
  s.checkpointer.close()
  assert meta["step"] == 1
  in_process.assert_trees_equal(jax.device_get(restored), jax.device_get(state))

  # --mode=predict.
  if predicts is None:
    with pytest.raises(ConfigError) as error:
      task.predict(restored, [str(tmp_path / "x.png")])
    assert "\n" not in str(error.value) and "--mode=predict" in str(error.value)
  else:
    path = _predict_input(predicts, s.train_spec, tmp_path / "example")
    lines = task.predict(restored, [path])
    assert len(lines) == 1 and path in lines[0], lines
