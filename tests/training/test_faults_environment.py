"""Failures the user's environment causes (issue 14, items 10 and 12): read-only workdirs, a full disk, TFDS
data dirs that are files, images of other bit depths and decompression bombs, Ctrl-C at start-up. Each is one
`error:` line naming the fix (exit status 2 on the command line), and no result is lost."""

import contextlib
import csv
import errno
import os
import shutil
import signal
import subprocess
import time

import jax
import numpy as np
import pytest
import orbax.checkpoint as ocp
from PIL import Image

from tests.training import harness
from tests.training.test_faults import STEPS, assert_identical, config, copy_of, trained_reference
from vision_jax import train
from vision_jax.data.formats import images as image_files
from vision_jax.errors import DataError, UserError, close_all, os_error_line, os_errors_name
from vision_jax.tasks import classification_eval, gan_eval
from vision_jax.train_lib import writers
from vision_jax.train_lib.checkpoint import Checkpointer, load_state_arrays

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
  return trained_reference(data_dir, tmp_path_factory)


@contextlib.contextmanager
def immutable(path):
  """`chattr +i`: not even root may create files in `path` (skips where the file system does not support it)."""
  if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
    pytest.skip("chattr +i is not available here (needs root and ext4/xfs)")
  try:
    yield
  finally:
    subprocess.run(["chattr", "-i", str(path)], check=True)


@contextlib.contextmanager
def small_tmpfs(path, size):
  os.makedirs(path)
  if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                    capture_output=True).returncode != 0:
    pytest.skip("cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)")
  try:
    yield
  finally:
    subprocess.run(["umount", str(path)], check=True)


def test_os_error_lines():
  assert os_error_line(PermissionError(errno.EACCES, "Permission denied", "/w/x")) == (
      "/w/x: Permission denied; make it writable (or readable), or use another path")
  full = ValueError('RESOURCE_EXHAUSTED: Error writing local file "/w/checkpoints/3.tmp/a": Failed to write 4008 '
                    "bytes to file 9: No space left on device [os_error_code='28']")
  assert os_error_line(full) == ("No space left on device writing /w/checkpoints/3.tmp/a; the disk is full; free "
                                 "space and rerun the same command (the previous checkpoint is kept)")
  assert os_error_line(ValueError("a bug")) is None
  assert os_error_line(OSError(errno.EIO, "I/O error")) is None  # not the user's to fix: a traceback
  # orbax's background JSON writer loses the path: the checkpointer names its directory instead
  with pytest.raises(OSError) as error, os_errors_name("/w/checkpoints"):
    raise OSError(errno.ENOSPC, "No space left on device")
  assert os_error_line(error.value) == ("/w/checkpoints: No space left on device; the disk is full; free space and "
                                        "rerun the same command (the previous checkpoint is kept)")
  with pytest.raises(OSError) as error, os_errors_name("/w"), os_errors_name("/w/checkpoints"):
    raise OSError(errno.ENOSPC, "No space left on device")
  assert error.value.filename == "/w/checkpoints"  # the innermost, most precise place wins
  with pytest.raises(OSError) as error, os_errors_name("/w"):
    raise OSError(errno.ENOSPC, "No space left on device", "/w/metrics.csv")
  assert error.value.filename == "/w/metrics.csv"  # an error that names its own path keeps it


def test_a_read_only_workdir_is_one_line_in_train_and_eval(reference, data_dir, tmp_path):
  workdir = tmp_path / "ro"
  workdir.mkdir()
  with immutable(workdir), pytest.raises(OSError) as error:
    train.train_and_evaluate(config(data_dir), str(workdir))
  assert os_error_line(error.value).startswith(f"{workdir}/.run.lock: Operation not permitted; make it writable")
  trained = tmp_path / "trained"
  shutil.copytree(reference[0], trained)
  with immutable(trained), pytest.raises(OSError) as error:
    train.eval_mode(config(data_dir), str(trained), [])
  assert os_error_line(error.value).startswith(f"{trained}/eval.json.tmp: Operation not permitted")


def test_a_full_disk_keeps_the_previous_checkpoint_and_resumes_identically(reference, data_dir, tmp_path):
  mount = tmp_path / "small"
  with small_tmpfs(mount, "1500k"):  # room for two checkpoints of this LeNet (~0.75 MB each), not three
    with pytest.raises(Exception) as error:  # pylint: disable=broad-except
      train.train_and_evaluate(config(data_dir), str(mount / "run"))
    line = os_error_line(error.value)  # the writer that fails first names its file, or the checkpoint directory
    assert "No space left on device" in line and str(mount / "run") in line, line
    saved = sorted(int(d) for d in os.listdir(mount / "run" / "checkpoints") if d.isdigit())
    assert saved and saved[-1] < STEPS
    shutil.copytree(mount / "run", tmp_path / "moved")  # the user frees space: here, moves the run
  summary = train.train_and_evaluate(config(data_dir), str(tmp_path / "moved"))
  assert summary["steps"] == STEPS
  assert_identical(str(tmp_path / "moved"), reference)


def files_open_under(path):
  """The files this process holds open below `path` (from /proc/self/fd)."""
  found = []
  for fd in os.listdir("/proc/self/fd"):
    with contextlib.suppress(OSError):  # the directory's own descriptor closes while it is listed
      target = os.readlink(f"/proc/self/fd/{fd}")
      if target.startswith(str(path) + os.sep):
        found.append(target)
  return found


def test_a_failing_checkpoint_save_still_closes_every_file_of_the_run(data_dir, tmp_path, monkeypatch):
  """A save that fails while the run closes (a full disk under orbax's background writer) raised from the
  checkpointer before the metric writer was closed, so metrics.csv and the TensorBoard file stayed open: on a
  full tmpfs `umount` then found the target busy. Every closer runs now, and the save's error is the one raised."""
  released, close_manager = [], ocp.CheckpointManager.close

  def recorded_close(manager):  # the real close: it also waits for the save still in flight
    released.append(manager.directory.name)
    close_manager(manager)
  monkeypatch.setattr(ocp.CheckpointManager, "close", recorded_close)

  def full_disk(checkpointer):
    raise OSError(errno.ENOSPC, "No space left on device", os.path.join(checkpointer.workdir, "checkpoints"))
  monkeypatch.setattr(Checkpointer, "wait", full_disk)
  workdir = tmp_path / "run"
  with pytest.raises(OSError) as error:
    train.train_and_evaluate(config(data_dir), str(workdir))
  assert os_error_line(error.value).startswith(f"{workdir}/checkpoints: No space left on device")
  assert files_open_under(workdir) == []
  assert sorted(released) == ["best", "checkpoints"]
  assert ",train,loss," in (workdir / "metrics.csv").read_text()  # rows logged before the failure reached the disk


def test_a_failing_image_summary_closes_its_event_file(tmp_path, monkeypatch):
  from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel

  def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(SummaryWriter, "add_image", full_disk)
  with pytest.raises(OSError):
    gan_eval.write_tensorboard_images(str(tmp_path), 1, {"gan/samples": np.zeros((8, 8, 3), np.uint8)})
  assert files_open_under(tmp_path) == []


def test_close_all_runs_every_closer_and_raises_the_first_failure():
  calls = []

  def failing(name):
    def close():
      calls.append(name)
      raise OSError(errno.ENOSPC, "No space left on device", name)
    return close
  with pytest.raises(OSError) as error:
    close_all(lambda: calls.append("progress"), failing("checkpoints"), failing("metrics.csv"))
  assert calls == ["progress", "checkpoints", "metrics.csv"] and error.value.filename == "checkpoints"
  close_all(lambda: calls.append("again"))  # nothing fails: nothing raised
  assert calls[-1] == "again"


def test_a_full_disk_met_by_buffered_writes_names_the_file(tmp_path):
  """A buffered file's flush on a full disk raises ENOSPC without a path (/dev/full gives that error for real);
  the metrics and JSON writers name their file, so the `error:` line says where."""
  writer = writers.MetricWriter(str(tmp_path / "run"))
  writer._csv_file = open("/dev/full", "w", newline="")  # pylint: disable=protected-access
  writer._csv = csv.writer(writer._csv_file)  # pylint: disable=protected-access
  with pytest.raises(OSError) as error:
    writer.write(1, "train", {"loss": 0.5})
  assert os_error_line(error.value) == (f"{tmp_path}/run/metrics.csv: No space left on device; the disk is full; "
                                        "free space and rerun the same command (the previous checkpoint is kept)")
  with pytest.raises(OSError) as error:
    writer.close()
  assert error.value.filename == f"{tmp_path}/run/metrics.csv"
  os.symlink("/dev/full", tmp_path / "summary.json.tmp")
  with pytest.raises(OSError) as error:
    writers.write_json(str(tmp_path / "summary.json"), {"steps": 5})
  assert error.value.errno == errno.ENOSPC and error.value.filename == f"{tmp_path}/summary.json.tmp"


def test_a_pathless_write_error_of_the_loop_names_the_workdir(reference, data_dir, tmp_path, monkeypatch):
  def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")  # as a picture's buffered write on a full disk
  monkeypatch.setattr(writers, "write_curves", full_disk)
  workdir = copy_of(reference, tmp_path)  # the summary is lost: the run evaluates again and writes its results
  with pytest.raises(OSError) as error:
    train.train_and_evaluate(config(data_dir), workdir)
  assert os_error_line(error.value).startswith(f"{workdir}: No space left on device; the disk is full")


def test_a_tfds_data_dir_that_is_a_file_is_one_line(data_dir, tmp_path):
  not_a_dir = tmp_path / "file"
  not_a_dir.write_text("")
  with pytest.raises(UserError, match=rf"TFDS data dir {not_a_dir} is a file, not a directory"):
    train.train_and_evaluate(config(str(not_a_dir)), str(tmp_path / "run"))


# ---------------------------------------------------------------- image bit depths


def test_sixteen_bit_and_float_images_are_converted_faithfully(tmp_path):
  rng = np.random.default_rng(0)
  sixteen = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
  Image.fromarray(sixteen).save(tmp_path / "a.png")  # PIL stores it as a 16-bit grayscale PNG ("I;16")
  unit = rng.random((5, 7), dtype=np.float32)
  Image.fromarray(unit, "F").save(tmp_path / "unit.tiff")
  wide = (rng.random((5, 7)) * 255).astype(np.float32)
  Image.fromarray(wide, "F").save(tmp_path / "wide.tiff")
  expected = {"a.png": (sixteen >> 8).astype(np.uint8), "unit.tiff": np.rint(unit.astype(np.float64) * 255),
              "wide.tiff": np.rint(wide)}
  assert Image.open(tmp_path / "a.png").mode == "I;16"
  for name, want in expected.items():
    np.testing.assert_array_equal(image_files.read_image(str(tmp_path / name), 1)[..., 0], want)
    np.testing.assert_array_equal(image_files.read_image(str(tmp_path / name), 3), np.repeat(want[..., None], 3, -1))
    np.testing.assert_array_equal(classification_eval.read_image(str(tmp_path / name), (5, 7, 1))[..., 0], want)


@pytest.mark.parametrize("values", [np.array([[-1.0, 0.5]]), np.array([[0.0, 256.0]]), np.array([[np.nan, 0.5]])])
def test_float_images_out_of_range_are_refused(tmp_path, values):
  Image.fromarray(values.astype(np.float32), "F").save(tmp_path / "x.tiff")
  for read in (lambda p: image_files.read_image(p, 1), lambda p: classification_eval.read_image(p, (1, 2, 1))):
    with pytest.raises(DataError, match=r"float image .*x.tiff has values outside \[0, 1\] and \[0, 255\]"):
      read(str(tmp_path / "x.tiff"))


def test_decompression_bombs_are_refused_from_their_header(tmp_path, monkeypatch):
  Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "bomb.png")
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 2000 pixels: over the limit, under PIL's own 2x error
  for read in (lambda p: image_files.read_image(p, 1), lambda p: classification_eval.read_image(p, (40, 50, 1))):
    with pytest.raises(DataError, match=r"bomb.png is 50x40 = 2,000 pixels, over the 1,000-pixel limit .* resize it"):
      read(str(tmp_path / "bomb.png"))


# ---------------------------------------------------------------- the command line


@pytest.mark.slow
def test_ctrl_c_at_start_up_is_one_line(data_dir, tmp_path):
  proc = subprocess.Popen(harness.main_cmd("--config=configs/mnist_lenet.py:smoke", f"--workdir={tmp_path}"),
                          env=harness.env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=REPO)
  deadline = time.time() + 120
  while not (tmp_path / ".run.lock").exists():  # the run has started (its lock), it is still building: no step yet
    assert time.time() < deadline and proc.poll() is None, proc.communicate()
    time.sleep(0.01)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("W", "I"))]
  assert proc.returncode == 2 and lines == [
      "error: interrupted; stopped without saving (the previous checkpoint, if any, is kept): rerun the same command "
      "to resume"], (out[-2000:], err[-2000:])


@pytest.mark.slow
def test_a_full_disk_on_the_command_line_is_one_line(data_dir, tmp_path):
  with small_tmpfs(tmp_path / "small", "1500k"):
    result = harness.run_main(data_dir, f"--config={REPO}/configs/mnist_lenet.py:smoke",
                              f"--workdir={tmp_path}/small/run", "--config.checkpoint.every_steps=1")
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("W", "I"))]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: No space left on device writing "), lines
    assert load_state_arrays(f"{tmp_path}/small/run")["step"] >= 1  # the previous checkpoint reads
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(load_state_arrays(f"{tmp_path}/small/run")["params"]))


def test_a_read_only_workdir_on_the_command_line_is_one_line(data_dir, tmp_path):
  with immutable(tmp_path):
    result = harness.run_main(data_dir, f"--config={REPO}/configs/mnist_lenet.py:smoke", f"--workdir={tmp_path}")
  lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("W", "I"))]
  assert result.returncode == 2 and lines == [
      f"error: {tmp_path}/.run.lock: Operation not permitted; make it writable (or readable), or use another path"], (
          result.stderr[-3000:])
