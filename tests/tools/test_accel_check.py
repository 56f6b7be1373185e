"""`python -m vision_jax.tools.accel_check --quick` end to end on CPU: the table rows and the JSON it writes."""

import json
import subprocess
import sys

ROWS = [('check', 'nms indices'), ('check', 'batched_nms indices'), ('check', 'roi_align forward'),
        ('check', 'roi_align backward'), ('check', 'fpn roi_align forward'), ('check', 'fpn roi_align backward'),
        ('ops', 'nms'), ('ops', 'roi_align fwd+bwd'), ('train', 'train step'), ('train', 'compile')]


def test_quick_run_prints_table_and_writes_json(tmp_path):
  path = tmp_path / 'accel.json'
  proc = subprocess.run([sys.executable, '-m', 'vision_jax.tools.accel_check', '--quick', f'--json={path}'],
                        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  result = json.loads(path.read_text())
  assert '... check nms indices' in proc.stderr  # rows are streamed as they land, before the table
  assert set(result) == {'environment', 'rows', 'ok'} and result['ok'] is True
  env = result['environment']
  assert env['backend'] == 'cpu' and env['quick'] is True and env['interpret_mode'] is True
  rows = result['rows']
  assert all(set(r) == {'section', 'name', 'implementation', 'size', 'value', 'unit', 'status'} for r in rows)
  assert {(r['section'], r['name']) for r in rows} == set(ROWS)
  checks = [r for r in rows if r['section'] == 'check']
  assert all(r['status'] == 'ok' for r in checks)
  assert all(r['value'] == 0 for r in checks if r['name'].endswith('indices'))  # identical kept indices
  assert all(0 <= r['value'] <= 1e-4 for r in checks if not r['name'].endswith('indices'))
  timed = [r for r in rows if r['section'] != 'check' and r['status'] == 'ok']
  # Kernel (interpret) and jnp reference for both ops, and our train step: positive figures.
  assert {(r['name'], r['implementation']) for r in timed} >= {
      ('nms', 'pallas (interpret)'), ('nms', 'jnp reference'), ('roi_align fwd+bwd', 'pallas (interpret)'),
      ('roi_align fwd+bwd', 'jnp reference'), ('train step', 'vision_jax (jit)')}
  assert all(r['value'] > 0 for r in timed)
  for r in rows:  # every row is in the printed table, with its status
    assert any(r['name'] in line and r['implementation'] in line and r['status'] in line
               for line in proc.stdout.splitlines()), r
  assert 'all checks passed' in proc.stdout


def test_isolated_jobs_run_in_children_and_only_picks_them(tmp_path):
  path = tmp_path / 'accel.json'
  proc = subprocess.run([sys.executable, '-m', 'vision_jax.tools.accel_check', '--quick', '--isolate',
                         '--only=check_nms,nms_reference', f'--json={path}'],
                        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  result = json.loads(path.read_text())
  assert result['environment']['isolated'] is True and 'each job in its own process' in proc.stdout
  assert [(r['name'], r['implementation'], r['status']) for r in result['rows']] == [
      ('nms indices', 'pallas vs reference', 'ok'), ('batched_nms indices', 'pallas vs reference', 'ok'),
      ('nms', 'jnp reference', 'ok')]


def test_a_crashing_or_hanging_job_costs_only_its_row():
  from vision_jax.tools import accel_check  # pylint: disable=import-outside-toplevel
  template = {'section': 'check', 'name': 'nms indices', 'implementation': 'pallas vs reference', 'size': 'N=2000',
              'value': None, 'unit': '', 'status': 'ok'}
  segfault = [sys.executable, '-c', 'import os, signal; os.kill(os.getpid(), signal.SIGSEGV)']
  rows = accel_check.rows_from_process(segfault, template, timeout=60)
  assert rows == [{**template, 'status': 'error: crashed (SIGSEGV)'}]
  rows = accel_check.rows_from_process([sys.executable, '-c', 'import time; time.sleep(30)'], template, timeout=1)
  assert rows == [{**template, 'status': 'error: timed out after 1 s'}]
  rows = accel_check.rows_from_process([sys.executable, '-c', 'raise SystemExit(3)'], template, timeout=60)
  assert rows[0]['status'].startswith('error: exit status 3')
  good = [sys.executable, '-c', f'print("noise"); print({accel_check.ROWS_PREFIX!r} + \'[{{"name": "x"}}]\')']
  assert accel_check.rows_from_process(good, template, timeout=60) == [{'name': 'x'}]


def test_an_unknown_job_is_a_one_line_error(capsys):
  from vision_jax.tools import accel_check  # pylint: disable=import-outside-toplevel
  assert accel_check.main(['--quick', '--only=check,nsm']) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith('error: nsm matches no job; pass ids or prefixes of: check_nms,') and '\n' not in err
  assert accel_check.main(['--quick', '--job=nms_pallas']) == 2  # a child names one whole id
