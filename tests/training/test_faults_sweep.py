"""The sweep never leaves a trial's run orphaned or wedged (issue 14, item 3): a trial's process dies with the
sweep (SIGTERM from the kernel, so it saves), Ctrl-C stops the running trial after it saved, a rerun waits for an
earlier run that still holds the trial's workdir, a trial whose summary lost its results is run again, and two
sweeps cannot share a directory. Trials here are small Python programs standing in for `vision_jax.main`."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from vision_jax.errors import ConfigError
from vision_jax.sweep import search, space, trials
from vision_jax.train_lib import run_lock

# A stand-in trial: records its pid, then waits; SIGTERM makes it "save" (write summary.json, stop_reason
# preempted) and exit 0, as the real run does; it notes every signal it gets.
FAKE_TRIAL = r"""
import json, os, signal, sys, time
workdir = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--workdir="))
def note(signum, frame):
  with open(os.path.join(workdir, "signals.txt"), "a") as f:
    f.write(signal.Signals(signum).name + "\n")
  if signum == signal.SIGTERM:
    summary = {"stop_reason": "preempted", "final_eval": {"accuracy": 0.1}}
    json.dump(summary, open(os.path.join(workdir, "summary.json"), "w"))
    sys.exit(0)
signal.signal(signal.SIGTERM, note)
signal.signal(signal.SIGINT, note)
open(os.path.join(workdir, "pid"), "w").write(str(os.getpid()))
time.sleep(float(os.environ.get("FAKE_TRIAL_SECONDS", "60")))
summary = {"stop_reason": "completed", "final_eval": {"accuracy": 0.5}}
json.dump(summary, open(os.path.join(workdir, "summary.json"), "w"))
"""

# A stand-in sweep: the real signal handlers and runner, the fake trial, one trial of a grid.
FAKE_SWEEP = r"""
import sys
from vision_jax.sweep import search, space, trials
runner = trials.SubprocessRunner(command=[sys.executable, "-c", sys.argv[2]])
stop = trials.stop_on_signals(runner)
spec = search.SweepSpec(config=sys.argv[3], space=space.parse_space(["input.batch_size=choice(32, 64)"]), search="grid")
rows = search.run_sweep(spec, sys.argv[1], runner, should_stop=lambda: bool(stop),
                        log=lambda line: print(line, flush=True))
print("stopped by", stop, flush=True)
"""

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs",
                      "mnist_lenet.py")


def _wait_for(path, timeout=60.0):
  deadline = time.time() + timeout
  while not os.path.exists(path):
    assert time.time() < deadline, f"{path} never appeared"
    time.sleep(0.05)
  time.sleep(0.2)  # its handlers are installed before the pid file is written


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  try:  # a zombie counts as dead
    with open(f"/proc/{pid}/stat") as f:
      return f.read().split(")")[-1].split()[0] != "Z"
  except OSError:
    return False


def _start_sweep(workdir):
  # In a session of its own, as a command typed at a terminal is: Ctrl-C signals that whole process group.
  return subprocess.Popen([sys.executable, "-c", FAKE_SWEEP, str(workdir), FAKE_TRIAL, CONFIG],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_sweep_takes_its_trial_down_and_the_trial_saves(tmp_path):
  sweep = _start_sweep(tmp_path)
  trial_dir = trials.trial_dir(str(tmp_path), 0)
  _wait_for(os.path.join(trial_dir, "pid"))
  pid = int(open(os.path.join(trial_dir, "pid")).read())
  sweep.send_signal(signal.SIGKILL)
  sweep.wait(timeout=30)
  deadline = time.time() + 20
  while _alive(pid):
    assert time.time() < deadline, "the trial outlived the sweep"
    time.sleep(0.05)
  assert open(os.path.join(trial_dir, "signals.txt")).read() == "SIGTERM\n"  # it could save
  assert json.load(open(os.path.join(trial_dir, "summary.json")))["stop_reason"] == "preempted"


def test_ctrl_c_stops_the_sweep_after_its_trial_saved(tmp_path):
  sweep = _start_sweep(tmp_path)
  trial_dir = trials.trial_dir(str(tmp_path), 0)
  _wait_for(os.path.join(trial_dir, "pid"))
  os.killpg(sweep.pid, signal.SIGINT)  # Ctrl-C at the terminal; the trial, in a session of its own, is spared
  out, _ = sweep.communicate(timeout=60)
  assert sweep.returncode == 0, out
  assert "trial 1 interrupted: rerun the same command to resume it" in out and "stopped by ['SIGINT']" in out
  assert open(os.path.join(trial_dir, "signals.txt")).read() == "SIGTERM\n"  # asked to save, once
  record = json.load(open(os.path.join(trial_dir, trials.RECORD)))
  assert record["status"] == "interrupted"
  assert not os.path.exists(trials.trial_dir(str(tmp_path), 1))  # the sweep stopped there


def test_a_trial_waits_for_an_earlier_run_that_still_holds_its_workdir(tmp_path, monkeypatch):
  directory = str(tmp_path / "trial_000")
  released = []

  def hold_for_a_second():
    with run_lock.held(directory):
      ready.set()
      time.sleep(1.0)
      released.append(time.time())

  ready = threading.Event()
  holder = threading.Thread(target=hold_for_a_second)
  holder.start()
  ready.wait()
  runner = trials.SubprocessRunner(command=[sys.executable, "-c", FAKE_TRIAL],
                                   env=dict(os.environ, FAKE_TRIAL_SECONDS="0"))
  outcome = runner(CONFIG, [], directory)
  holder.join()
  assert outcome.status == "completed"
  assert os.path.getmtime(os.path.join(directory, "pid")) >= released[0]
  monkeypatch.setattr(trials, "LOCK_WAIT_SECONDS", 0.3)
  with run_lock.held(directory):
    stuck = runner(CONFIG, [], directory)
  assert stuck.status == "failed" and stuck.error.startswith(f"an earlier run (pid {os.getpid()}) still holds")


def test_a_trial_whose_summary_lost_its_results_is_run_again(tmp_path):
  spec = search.SweepSpec(config=CONFIG, space=space.parse_space(["input.batch_size=choice(32)"]), search="grid")
  directory = trials.trial_dir(str(tmp_path), 0)
  trials.write_record(directory, {"trial": 0, "values": {"input.batch_size": 32}, "status": "completed",
                                  "overrides": [["input.batch_size", "32"]]})
  json.dump({"stop_reason": "completed", "final_eval": {}}, open(os.path.join(directory, "summary.json"), "w"))
  calls = []

  def runner(config, overrides, trial_directory):
    calls.append(trial_directory)
    summary = {"stop_reason": "completed", "final_eval": {"accuracy": 0.75}}
    json.dump(summary, open(os.path.join(trial_directory, "summary.json"), "w"))
    return trials.Outcome("completed", summary)

  rows = search.run_sweep(spec, str(tmp_path), runner, log=lambda line: None)
  assert calls == [directory] and rows[0]["accuracy"] == 0.75


def test_two_sweeps_cannot_share_a_directory(tmp_path):
  spec = search.SweepSpec(config=CONFIG, space=space.parse_space(["input.batch_size=choice(32)"]), search="grid")
  with run_lock.held(str(tmp_path)):
    with pytest.raises(ConfigError, match=rf"another run \(pid {os.getpid()}\) is using {tmp_path}"):
      search.run_sweep(spec, str(tmp_path), lambda *a: trials.Outcome("failed"), log=lambda line: None)
