"""Fault injection in process (issue 14): corrupt bytes and metadata, symlinked and stray checkpoint entries, a
kill between the final checkpoint and summary.json, a crash at wrap-up, settings that could only fail late, a
diverging loss. Each case checks that no result is lost and that the resumed run is bit-identical to an
uninterrupted one (the reference, trained once per module and copied for each case)."""

import json
import logging
import os
import shutil

import jax
import numpy as np
import pytest

from vision_jax import train
from vision_jax.configs import mnist_lenet
from vision_jax.errors import CheckpointError, ConfigError, TrainingDivergedError
from vision_jax.train_lib.checkpoint import load_state_arrays

STEPS = 5


def config(data_dir, **overrides):
  cfg = mnist_lenet.get_config("smoke")
  cfg.dataset.data_dir = data_dir
  cfg.num_train_steps = STEPS
  cfg.checkpoint.every_steps = cfg.log_every_steps = 1
  cfg.eval_every_steps = STEPS
  cfg.input.eval_batch_size = 500
  for key, value in overrides.items():
    section, _, name = key.rpartition(".")
    (cfg[section] if section else cfg)[name] = value
  return cfg


_REFERENCES = {}


def trained_reference(data_dir, tmp_path_factory):
  """An uninterrupted run: (workdir, its final arrays, its summary); trained once per test process."""
  if data_dir not in _REFERENCES:
    workdir = str(tmp_path_factory.mktemp("reference"))
    summary = train.train_and_evaluate(config(data_dir), workdir)
    _REFERENCES[data_dir] = (workdir, load_state_arrays(workdir), summary)
  return _REFERENCES[data_dir]


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
  return trained_reference(data_dir, tmp_path_factory)


def copy_of(reference, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(reference[0], workdir, symlinks=True)
  os.remove(os.path.join(workdir, "summary.json"))  # the results exist only in the checkpoints now
  return workdir


def assert_same_arrays(workdir, reference):
  found = load_state_arrays(workdir)
  for x, y in zip(jax.tree.leaves(found), jax.tree.leaves(reference[1]), strict=True):
    np.testing.assert_array_equal(x, y)


def assert_identical(workdir, reference):
  """Bit-identical final checkpoint and the same final evaluation as the uninterrupted reference."""
  assert_same_arrays(workdir, reference)
  with open(os.path.join(workdir, "summary.json")) as f:
    assert json.load(f)["final_eval"] == reference[2]["final_eval"]


def newest(workdir, which="checkpoints"):
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, which)) if d.isdigit())
  return os.path.join(workdir, which, str(steps[-1]))


def array_files(step_dir):
  """The data files of a checkpoint's state (ocdbt chunks), largest first."""
  files = [os.path.join(root, name) for root, _, names in os.walk(os.path.join(step_dir, "state"))
           for name in names if os.path.basename(root) == "d"]
  return sorted(files, key=os.path.getsize, reverse=True)


def flip_one_bit(path):
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0x10
  open(path, "wb").write(bytes(data))


def garble_64_bytes(path):
  data = bytearray(open(path, "rb").read())
  start = len(data) // 3
  data[start:start + 64] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
  open(path, "wb").write(bytes(data))


def garbage_meta(step_dir):
  open(os.path.join(step_dir, "meta", "metadata"), "w").write("{not json")


def incomplete_meta(step_dir):  # valid JSON without the input position: the checksum of the meta tells
  path = os.path.join(step_dir, "meta", "metadata")
  meta = json.load(open(path))
  del meta["data"]
  json.dump(meta, open(path, "w"))


def meta_number_changed(step_dir):  # valid, complete JSON, one value changed
  path = os.path.join(step_dir, "meta", "metadata")
  meta = json.load(open(path))
  meta["data"]["next_index"] += 1
  json.dump(meta, open(path, "w"))


@pytest.mark.parametrize("damage", [
    flip_one_bit, pytest.param(garble_64_bytes, marks=pytest.mark.slow), incomplete_meta,
    pytest.param(garbage_meta, marks=pytest.mark.slow), pytest.param(meta_number_changed, marks=pytest.mark.slow)])
def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(reference, data_dir, tmp_path, caplog,
                                                                          damage):
  workdir = copy_of(reference, tmp_path)
  damaged = newest(workdir)
  if damage in (flip_one_bit, garble_64_bytes):
    damage(array_files(damaged)[0])
  else:
    damage(damaged)
  with caplog.at_level(logging.WARNING):
    summary = train.train_and_evaluate(config(data_dir), workdir)
  assert f"checkpoint {damaged} is corrupt" in caplog.text and "trying the previous one" in caplog.text
  assert summary["steps"] == STEPS and not summary.get("already_finished")
  assert_identical(workdir, reference)
  aside = os.listdir(os.path.join(workdir, "corrupt"))  # kept for inspection, not deleted
  assert len(aside) == 1 and aside[0].startswith(f"checkpoints_{STEPS}_")


def test_a_kill_between_the_final_checkpoint_and_summary_loses_nothing(reference, data_dir, tmp_path):
  workdir = copy_of(reference, tmp_path)  # as a kill after the final save leaves it: no summary.json
  summary = train.train_and_evaluate(config(data_dir), workdir)
  assert summary["stop_reason"] == "completed" and summary["final_eval"] == reference[2]["final_eval"]
  assert_identical(workdir, reference)
  again = train.train_and_evaluate(config(data_dir), workdir)  # a finished run keeps its results
  assert again["already_finished"] and again["final_eval"] == reference[2]["final_eval"]
  assert_identical(workdir, reference)


@pytest.mark.parametrize("entry", ["symlink", "stray"])
@pytest.mark.parametrize("where", ["checkpoints", "best"])
def test_symlinked_or_stray_entries_are_refused_not_deleted(reference, data_dir, tmp_path, entry, where):
  workdir = copy_of(reference, tmp_path)
  outside = tmp_path / "precious"
  outside.mkdir()
  (outside / "keep.txt").write_text("mine")
  path = os.path.join(workdir, where, "1")
  if entry == "symlink":
    os.symlink(outside, path)
    message = rf"{path} is a symlink; checkpoint clean-up would delete what it points to: move it out"
  else:
    shutil.copytree(outside, path)
    message = rf"{path} was not written by vision_jax \(no checkpoint items\) .* move it out of"
  with pytest.raises(CheckpointError, match=message) as error:
    train.train_and_evaluate(config(data_dir), workdir)
  assert "\n" not in str(error.value)
  assert (outside / "keep.txt").read_text() == "mine" and os.path.exists(os.path.join(path, "keep.txt"))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == sorted(
      os.listdir(os.path.join(reference[0], "checkpoints")) + (["1"] if where == "checkpoints" else []))


def test_a_crash_right_after_the_final_save_still_completes_that_save(reference, data_dir, tmp_path, monkeypatch):
  from vision_jax.train_lib import checkpoint  # pylint: disable=import-outside-toplevel
  real_save = checkpoint.Checkpointer.save

  def save_then_crash(self, step, state, meta):
    real_save(self, step, state, meta)
    if step == STEPS:  # the save is still being written in the background now
      raise RuntimeError("crash after the final save")

  monkeypatch.setattr(checkpoint.Checkpointer, "save", save_then_crash)
  workdir = copy_of(reference, tmp_path)
  shutil.rmtree(newest(workdir))  # as if killed before the final save: the last step is trained again
  with pytest.raises(RuntimeError, match="crash after the final save"):
    train.train_and_evaluate(config(data_dir), workdir)
  entries = os.listdir(os.path.join(workdir, "checkpoints"))
  assert str(STEPS) in entries and not [e for e in entries if "tmp" in e], entries
  monkeypatch.undo()
  summary = train.train_and_evaluate(config(data_dir), workdir)  # only the summary is missing: rebuilt
  assert summary["final_eval"] == reference[2]["final_eval"]
  assert_identical(workdir, reference)


@pytest.mark.parametrize("overrides,message", [
    ({"checkpoint.best_metric": "acuracy"}, r"monitored metric 'acuracy' .* \(accuracy, loss, macro_f1, num_examples, "
                                            r"top5_accuracy\); pick one"),
    pytest.param({"callbacks.early_stopping_patience": 2, "callbacks.early_stopping_metric": "val_loss"},
                 r"monitored metric 'val_loss'", marks=pytest.mark.slow),
    ({"input.eval_batch_size": 0}, r"input.eval_batch_size=0 must be a positive integer"),
    ({"input.batch_size": -8}, r"input.batch_size=-8 must be a positive integer"),
    ({"log_every_steps": 0}, r"log_every_steps=0 must be a positive integer"),
    ({"optimizer.learning_rate": -1e-3}, r"learning rate of 'model' is -0.001; it must be a positive number"),
    ({"checkpoint.keep": 0}, r"checkpoint.keep=0 keeps no checkpoint"),
])
def test_settings_that_could_only_fail_late_fail_before_the_first_step(data_dir, tmp_path, overrides, message):
  with pytest.raises(ConfigError, match=message) as error:
    train.train_and_evaluate(config(data_dir, **overrides), str(tmp_path))
  assert "\n" not in str(error.value)
  assert not os.path.isdir(tmp_path / "checkpoints") or not os.listdir(tmp_path / "checkpoints")


def test_resuming_with_fewer_steps_than_the_checkpoint_is_one_line(reference, data_dir, tmp_path):
  workdir = copy_of(reference, tmp_path)
  with pytest.raises(ConfigError, match=rf"is at step {STEPS}, past this config's 3 steps; raise num_train_steps"):
    train.train_and_evaluate(config(data_dir, num_train_steps=3), workdir)
  assert_same_arrays(workdir, reference)  # the checkpoint is untouched


def test_a_diverging_loss_stops_the_run_keeping_the_last_good_checkpoint(data_dir, tmp_path):
  # Adam at lr 1e6 multiplies the loss ~1e29-fold in three steps while it stays finite (issue 14, item 11).
  cfg = config(data_dir, **{"optimizer.learning_rate": 1e6, "schedule.name": "constant", "num_train_steps": 4})
  with pytest.raises(TrainingDivergedError, match=r"the training loss diverged to \S+ by step (\d) \(first loss "
                     r"2\.\d+\); the last good checkpoint .* is kept") as error:
    train.train_and_evaluate(cfg, str(tmp_path))
  stopped_at = int(error.value.args[0].split(" by step ")[1].split()[0])
  saved = load_state_arrays(str(tmp_path))
  assert int(saved["step"]) == stopped_at - 1
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(saved["params"]))


def test_check_not_diverging_by_hand():
  from vision_jax.train_lib import setup  # pylint: disable=import-outside-toplevel
  assert setup.check_not_diverging([{"loss": 2.0}, {"loss": 3.0}], None, 2, "w") == 2.0
  assert setup.check_not_diverging([{"loss": 1.9e6}], 2.0, 9, "w") == 2.0  # 0.95e6 x the first loss: kept going
  assert setup.check_not_diverging([{"accuracy": 1e9}], None, 9, "w") is None  # no loss: nothing to check
  with pytest.raises(TrainingDivergedError, match="diverged to 2.1e"):
    setup.check_not_diverging([{"loss": 2.1e6}], 2.0, 9, "w")
  with pytest.raises(TrainingDivergedError, match="diverged to -1e"):  # small first losses count as 1
    setup.check_not_diverging([{"loss": -1.0e6 - 1}], 1e-3, 9, "w")
