"""Every user mistake of the command line is one line on stderr, exit status 2, no traceback."""

import os

import numpy as np
import pytest
from PIL import Image

from tests.training import harness

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "mnist_lenet.py")


def _assert_one_line_error(result, pattern):
  import re  # pylint: disable=import-outside-toplevel
  lines = [l for l in result.stderr.splitlines() if l.strip() and not l.startswith(("W", "I"))]
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
  assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("args,pattern,devices", [
    (["--config=configs/no_such.py"], r"config file .*no_such.py' not found", 1),
    ([f"--config={CONFIG}:model=lenet9"], r"unknown model 'lenet9'", 1),
    ([f"--config={CONFIG}:dataset=no_such_set"], r"unknown dataset 'no_such_set'", 1),
    ([f"--config={CONFIG}:dataset=fashion_mnist"], r"not prepared .*tfds build fashion_mnist", 1),
    (["--config.input.batch_size=big"], r"'big' is not a valid int", 1),
    (["--config.optimizer.learning_rat=0.1"], r"unknown config key 'optimizer.learning_rat'", 1),
    ([f"--config={CONFIG}:epochs=many"], r"epochs='many' is not a valid int", 1),
    (["--config.input.batch_size=12"], r"batch_size=12 is not divisible by the 8 devices", 8),
])
def test_bad_command_lines(data_dir, tmp_path, args, pattern, devices):
  result = harness.run_main(data_dir, *args, f"--workdir={tmp_path}", devices=devices)
  _assert_one_line_error(result, pattern)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("trained"))
  result = harness.run_main(data_dir, f"--config={CONFIG}:smoke", "--config.num_train_steps=2",
                            f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def test_checkpoint_of_another_model(data_dir, trained):
  result = harness.run_main(data_dir, f"--config={CONFIG}:smoke,model=lenet5", f"--workdir={trained}")
  _assert_one_line_error(result, r"holds a checkpoint of another run \(model='lenet5_relu'\).*use another --workdir")


def test_predict_errors_and_success(data_dir, trained, tmp_path):
  rgb, broken, gray = tmp_path / "rgb.png", tmp_path / "broken.jpg", tmp_path / "gray.png"
  Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(rgb)
  broken.write_bytes(b"\xff\xd8 truncated")
  Image.fromarray(np.zeros((28, 28), np.uint8)).save(gray)
  common = [f"--config={CONFIG}:smoke", f"--workdir={trained}", "--mode=predict"]
  _assert_one_line_error(harness.run_main(data_dir, *common, f"--images={rgb}"),
                         r"has 3 channel\(s\) but the model expects 1")
  _assert_one_line_error(harness.run_main(data_dir, *common, f"--images={broken}"), r"cannot read .*broken.jpg")
  _assert_one_line_error(harness.run_main(data_dir, *common, f"--images={tmp_path}/missing.png"),
                         r"no such file")
  ok = harness.run_main(data_dir, *common, f"--images={gray}")
  assert ok.returncode == 0 and ok.stdout.startswith(f"{gray}: ")
