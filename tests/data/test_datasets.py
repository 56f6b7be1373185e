"""Dataset names: KIND:PATH routing to the user-format loaders, data dir problems as one-line errors, and no
stray TFDS log lines on a fresh data dir."""

import logging
import os
import sys
import types

from absl import logging as absl_logging
import pytest

from vision_jax.data import datasets, embedded_mnist
from vision_jax.errors import ConfigError, DataError


@pytest.fixture
def fake_formats(monkeypatch):
  """Replaces `vision_jax.data.formats` with a module whose `load` records its arguments."""
  calls = []

  def load(kind, path, split, **options):
    calls.append((kind, path, split, options))
    return "source", "spec"

  monkeypatch.setitem(sys.modules, "vision_jax.data.formats", types.SimpleNamespace(load=load))
  return calls


@pytest.mark.parametrize("kind", datasets.FORMAT_KINDS)
def test_kind_prefix_routes_to_the_format_loader(fake_formats, kind):
  assert datasets.load(f"{kind}:/data/my:set", "validation", max_objects=5, channels=1) == ("source", "spec")
  assert fake_formats == [(kind, "/data/my:set", "validation", {"max_objects": 5, "validation_fraction": 0.2,
                                                                "seed": 0, "channels": 1, "strict": False})]


def test_unknown_kind_and_missing_path_are_one_line_errors(fake_formats):
  with pytest.raises(DataError, match="unknown dataset kind 'folders'.*folder, coco, voc, yolo, mask_pairs") as e:
    datasets.load("folders:/data/x", "train")
  assert "\n" not in str(e.value)
  with pytest.raises(DataError, match="names no path; write yolo:PATH"):
    datasets.load("yolo:", "train")
  assert not fake_formats


def test_versioned_tfds_name_is_not_a_kind(tmp_path):
  with pytest.raises(DataError, match="'mnist:3.0.1' is not prepared"):
    datasets.load("mnist:3.0.1", "train", str(tmp_path))


def test_config_is_named_when_missing(tmp_path):
  with pytest.raises(DataError, match="voc/CONFIG with CONFIG one of 2007, 2012"):
    datasets.load("voc", "train", str(tmp_path))


def test_max_objects_below_one_is_a_config_error():
  with pytest.raises(ConfigError, match="max_objects must be at least 1"):
    datasets.load("voc/2007", "train", max_objects=0)


def _tfds_noise(records, stderr):
  lines = [r.getMessage() for r in records if r.name == "absl"] + stderr.splitlines()
  return [line for line in lines if "Variant folder" in line or "dataset_info.json" in line]


def test_fresh_missing_data_dir_is_created_without_tfds_warnings(tmp_path, caplog, capfd):
  data_dir = str(tmp_path / "new" / "tfds")
  with caplog.at_level(logging.INFO):
    source, spec = datasets.load("mnist_embedded", "test", data_dir)
    with pytest.raises(DataError, match="not prepared"):
      datasets.load("mnist", "train", data_dir)
  assert len(source) == spec.num_examples == 2000 and os.path.isdir(data_dir)
  assert _tfds_noise(caplog.records, capfd.readouterr().err) == []


def test_quiet_tfds_drops_only_its_own_lines(caplog):
  with caplog.at_level(logging.WARNING):
    with datasets.quiet_tfds():
      absl_logging.warning("Variant folder /x/1.0.0 has no dataset_info.json")
      absl_logging.warning("something else")
    absl_logging.warning("Variant folder /y/1.0.0 has no dataset_info.json")
  assert [r.getMessage() for r in caplog.records] == ["something else",
                                                      "Variant folder /y/1.0.0 has no dataset_info.json"]


def test_data_dir_that_is_a_file_is_a_one_line_error(tmp_path):
  a_file = tmp_path / "tfds"
  a_file.write_text("")
  with pytest.raises(DataError, match=f"TFDS data dir {a_file} is a file, not a directory"):
    datasets.load("mnist_embedded", "train", str(a_file))
  with pytest.raises(DataError, match=f"cannot create TFDS data dir {a_file}/sub"):
    datasets.load("mnist_embedded", "train", str(a_file / "sub"))


def test_read_only_data_dir_is_a_one_line_error(tmp_path, monkeypatch):
  def refuse(data_dir):
    raise PermissionError(13, "Permission denied", os.path.join(data_dir, ".mnist_embedded.lock"))

  monkeypatch.setattr(embedded_mnist, "prepare", refuse)
  with pytest.raises(DataError, match="cannot prepare 'mnist_embedded' under .* \\(Permission denied\\); set "):
    datasets.load("mnist_embedded", "train", str(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_data_dir_on_disk_is_a_one_line_error(tmp_path):
  read_only = tmp_path / "ro"
  read_only.mkdir()
  read_only.chmod(0o555)
  try:
    with pytest.raises(DataError, match="cannot prepare 'mnist_embedded'"):
      datasets.load("mnist_embedded", "train", str(read_only))
  finally:
    read_only.chmod(0o755)
