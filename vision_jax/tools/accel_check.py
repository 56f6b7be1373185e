"""One command that checks the Pallas kernels and times them and the train step on whatever backend JAX sees.

  python -m vision_jax.tools.accel_check                  # full sizes, for a GPU/TPU (a few minutes)
  python -m vision_jax.tools.accel_check --quick          # small sizes; on CPU the kernels run in interpret mode
  python -m vision_jax.tools.accel_check --json=accel.json

(a) check: each Pallas kernel against its jnp reference (NMS and batched NMS kept indices identical; RoIAlign
    and the routed FPN RoIAlign within 1e-4, forward and backward).
(b) ops: NMS at 1k/10k/100k boxes and RoIAlign forward+backward (K=512, C=256, 200x272, 7x7, sampling 2) for
    the kernel, the jnp reference and, when torch/torchvision import and see the same kind of device,
    torchvision.ops (median of --repeats after a warm-up).
(c) train: the ResNet-50 train step in bfloat16 as train.py compiles it (`vision_jax.bench.ours.bench_model`,
    batch 256 halved until it fits) and the same network in PyTorch AMP channels-last when importable.
(d) one table on stdout and every figure in JSON. Failures of a row (a kernel that does not lower, a peer
    that is missing) are reported in its status column; the exit status is 1 when a check fails.

Off the CPU each row group runs in its own process (`--isolate`, `--job_timeout`), so a kernel that crashes
or hangs costs its own rows only; `--only=check,nms_pallas` picks groups by id prefix (ids: `jobs`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

import numpy as np

from vision_jax.bench import ops as bench_ops

TOLERANCE = 1e-4
SIZES = {
    'full': {'check_nms': 2000, 'nms': (1_000, 10_000, 100_000), 'roi': bench_ops.ROI,
             'train': {'model': 'resnet50', 'batch': 256, 'resolution': 224, 'steps': 10, 'warmup': 3}},
    'quick': {'check_nms': 300, 'nms': (1_000,),
              'roi': {'k': 32, 'c': 16, 'h': 50, 'w': 68, 'out': 7, 'sampling': 2, 'scale': 0.25},
              'train': {'model': 'resnet18_cifar', 'batch': 8, 'resolution': 16, 'steps': 2, 'warmup': 1}},
}
ROW_KEYS = ('section', 'name', 'implementation', 'size', 'value', 'unit', 'status')


def _row(section: str, name: str, implementation: str, size: str, value: float | None = None, unit: str = '',
         status: str = 'ok') -> dict[str, Any]:
  return dict(zip(ROW_KEYS, (section, name, implementation, size, value, unit, status)))


def _guarded(rows: list[dict[str, Any]], template: dict[str, Any], fn: Callable[[], list[dict[str, Any]]]):
  """Appends fn()'s rows, or the template row with the error as its status (the check goes on).

  Each row is also printed to stderr as it lands: a kernel that crashes the process (the first GPU run saw a
  segmentation fault) then leaves the rows before it on screen, where the final table never comes.
  """
  before = len(rows)
  print(f'... {template["section"]} {template["name"]} {template["implementation"]} {template["size"]}',
        file=sys.stderr, flush=True)
  try:
    rows.extend(fn())
  except Exception as e:  # pylint: disable=broad-except  # a kernel that fails to lower must not stop the run
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    rows.append({**template, 'status': f'error: {type(e).__name__}: {first[:160]}'})
    if os.environ.get('ACCEL_CHECK_TRACEBACK'):
      traceback.print_exc()
  for r in rows[before:]:
    print('    ' + '  '.join(str(r[k]) for k in ROW_KEYS), file=sys.stderr, flush=True)


def _kernel_label(interpret: bool) -> str:
  return 'pallas (interpret)' if interpret else 'pallas'


# (a) kernels against references ---------------------------------------------------------------------------


def check_nms(n: int) -> list[dict[str, Any]]:
  """NMS and batched NMS: kept indices of the kernel identical to the reference's."""
  from vision_jax import ops  # pylint: disable=g-import-not-at-top

  boxes, scores = bench_ops.nms_inputs(n, seed=1)
  classes = np.random.default_rng(1).integers(0, 5, n)
  rows = []
  for name, fn in (('nms', lambda impl: ops.nms(boxes, scores, 0.5, n, implementation=impl)),
                   ('batched_nms', lambda impl: ops.batched_nms(boxes, scores, classes, 0.5, n, implementation=impl))):
    (ref_idx, ref_n), (ker_idx, ker_n) = fn('reference'), fn('pallas')
    same = int(ref_n) == int(ker_n) and np.array_equal(np.asarray(ref_idx), np.asarray(ker_idx))
    differing = int(np.sum(np.asarray(ref_idx) != np.asarray(ker_idx)))
    rows.append(_row('check', f'{name} indices', 'pallas vs reference', f'N={n}', differing, 'indices differ',
                     'ok' if same else f'FAIL: kept {int(ker_n)} vs {int(ref_n)}'))
  return rows


def _max_diff(a, b) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  return max(float(np.max(np.abs(np.asarray(x, np.float32) - np.asarray(y, np.float32)), initial=0.0))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def check_roi_align(p: dict[str, Any]) -> list[dict[str, Any]]:
  """RoIAlign and routed FPN RoIAlign: kernel forward and backward within TOLERANCE of the reference."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vision_jax import ops  # pylint: disable=g-import-not-at-top

  f, bx, bi, cot = map(jnp.asarray, bench_ops.roi_inputs(1, p))
  size = (p['out'],) * 2
  pyramid = [f[:, ::2**i, ::2**i] for i in range(4)]  # P2..P5; boxes x4 (64..1600 px) reach every level
  cases = {
      'roi_align': (lambda x, impl: ops.roi_align(x, bx, bi, size, p['scale'], p['sampling'], True,
                                                  implementation=impl), f),
      'fpn roi_align': (lambda xs, impl: ops.multilevel_roi_align(xs, bx * 4, bi, size, (2, 3, 4, 5),
                                                                  p['sampling'], implementation=impl)[0], pyramid),
  }
  rows = []
  for name, (fn, x) in cases.items():
    results = {}
    for impl in ('reference', 'pallas'):
      out, vjp = jax.vjp(lambda v, impl=impl: fn(v, impl), x)
      results[impl] = (out, vjp(cot)[0])
    for part, i in (('forward', 0), ('backward', 1)):
      diff = _max_diff(results['pallas'][i], results['reference'][i])
      rows.append(_row('check', f'{name} {part}', 'pallas vs reference', f'K={p["k"]} C={p["c"]}', diff,
                       'max |diff|', 'ok' if diff <= TOLERANCE else f'FAIL: > {TOLERANCE:g}'))
  return rows


# (b) op timings -------------------------------------------------------------------------------------------


def _torch_device(backend: str):
  """The torch device matching JAX's backend, or (None, reason)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
    import torchvision  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return None, 'skipped: torch/torchvision not importable'
  if backend == 'cpu':
    return 'cpu', ''
  from vision_jax.ops import dispatch  # pylint: disable=g-import-not-at-top
  if backend in dispatch.GPU_BACKENDS and torch.cuda.is_available():
    return 'cuda', ''
  return None, f'skipped: torch has no device for backend {backend}'


def _torch_sync(device: str) -> None:
  if device == 'cuda':
    import torch  # pylint: disable=g-import-not-at-top
    torch.cuda.synchronize()


def time_nms(n: int, impl: str, repeats: int, interpret: bool) -> list[dict[str, Any]]:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vision_jax import ops  # pylint: disable=g-import-not-at-top

  b, s = map(jnp.asarray, bench_ops.nms_inputs(n))
  fn = jax.jit(lambda b, s: ops.nms(b, s, 0.5, n, implementation=impl))
  t = bench_ops.median_time(lambda: jax.block_until_ready(fn(b, s)), repeats)
  label = _kernel_label(interpret) if impl == 'pallas' else 'jnp reference'
  return [_row('ops', 'nms', label, f'N={n}', t * 1e3, 'ms')]


def time_nms_torch(n: int, device: str, repeats: int) -> list[dict[str, Any]]:
  import torch  # pylint: disable=g-import-not-at-top
  from torchvision import ops as tv_ops  # pylint: disable=g-import-not-at-top

  b, s = (torch.from_numpy(a).to(device) for a in bench_ops.nms_inputs(n))

  def run():
    keep = tv_ops.nms(b, s, 0.5)
    _torch_sync(device)
    return keep

  return [_row('ops', 'nms', f'torchvision ({device})', f'N={n}', bench_ops.median_time(run, repeats) * 1e3, 'ms')]


def _roi_size(p: dict[str, Any]) -> str:
  return f'K={p["k"]} C={p["c"]} {p["h"]}x{p["w"]} {p["out"]}x{p["out"]} sr={p["sampling"]}'


def time_roi_align(p: dict[str, Any], impl: str, repeats: int, interpret: bool) -> list[dict[str, Any]]:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vision_jax import ops  # pylint: disable=g-import-not-at-top

  f, bx, bi, cot = map(jnp.asarray, bench_ops.roi_inputs(0, p))
  fwd = lambda x: ops.roi_align(x, bx, bi, (p['out'],) * 2, p['scale'], p['sampling'], True, implementation=impl)
  fb = jax.jit(lambda x: bench_ops.forward_and_backward(fwd, x, cot))  # both: a backward alone drops the kernel
  t = bench_ops.median_time(lambda: jax.block_until_ready(fb(f)), repeats)
  label = _kernel_label(interpret) if impl == 'pallas' else 'jnp reference'
  return [_row('ops', 'roi_align fwd+bwd', label, _roi_size(p), t * 1e3, 'ms')]


def time_roi_align_torch(p: dict[str, Any], device: str, repeats: int) -> list[dict[str, Any]]:
  import torch  # pylint: disable=g-import-not-at-top
  from torchvision import ops as tv_ops  # pylint: disable=g-import-not-at-top

  f, bx, bi, cot = bench_ops.roi_inputs(0, p)
  feats = torch.from_numpy(f).permute(0, 3, 1, 2).contiguous().to(device)
  rois = torch.cat([torch.from_numpy(bi).float()[:, None], torch.from_numpy(bx)], 1).to(device)
  grad = torch.from_numpy(cot).permute(0, 3, 1, 2).contiguous().to(device)

  def run():
    x = feats.detach().requires_grad_(True)
    tv_ops.roi_align(x, rois, (p['out'],) * 2, p['scale'], p['sampling'], True).backward(grad)
    _torch_sync(device)

  t = bench_ops.median_time(run, repeats)
  return [_row('ops', 'roi_align fwd+bwd', f'torchvision ({device})', _roi_size(p), t * 1e3, 'ms')]


# (c) train step -------------------------------------------------------------------------------------------


def _out_of_memory(e: Exception) -> bool:
  text = str(e).lower()
  return 'resource_exhausted' in text or 'out of memory' in text


def time_train_ours(t: dict[str, Any]) -> list[dict[str, Any]]:
  """Our bf16 train step (as train.py compiles it), halving the batch until it fits."""
  from vision_jax.bench import ours  # pylint: disable=g-import-not-at-top

  batch = t['batch']
  while True:
    try:
      fig = ours.bench_model(t['model'], batch, t['resolution'], 3, 'bfloat16', t['steps'], t['warmup'], True)
      break
    except Exception as e:  # pylint: disable=broad-except
      if not _out_of_memory(e) or batch <= 8:
        raise
      batch //= 2
  size = f'{t["model"]} b{batch} {t["resolution"]}px bf16'
  return [_row('train', 'train step', 'vision_jax (jit)', size, fig['train_images_per_sec'], 'img/s'),
          _row('train', 'compile', 'vision_jax (jit)', size, fig['compile_sec'], 's')]


def time_train_torch(t: dict[str, Any], device: str) -> list[dict[str, Any]]:
  """The same network in PyTorch eager, AMP bf16, channels-last, SGD momentum 0.9."""
  from vision_jax.bench import peer_torch  # pylint: disable=g-import-not-at-top

  size = f'{t["model"]} b{t["batch"]} {t["resolution"]}px bf16'
  label = f'torch AMP channels-last ({device})'
  if device == 'cpu' and t['model'] in peer_torch.MODELS:
    fig = peer_torch.bench_model(t['model'], t['batch'], t['resolution'], 3, 'bfloat16', t['steps'], t['warmup'])
    return [_row('train', 'train step', label, size, fig['train_images_per_sec'], 'img/s')]
  import torch  # pylint: disable=g-import-not-at-top
  import torchvision  # pylint: disable=g-import-not-at-top
  from vision_jax.bench import timing  # pylint: disable=g-import-not-at-top

  if t['model'] != 'resnet50':
    return [_row('train', 'train step', label, size, status=f'skipped: no torch peer of {t["model"]} on {device}')]
  net = torchvision.models.resnet50(num_classes=10).to(device).to(memory_format=torch.channels_last)
  opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
  images = torch.rand(t['batch'], 3, t['resolution'], t['resolution'], device=device)
  images = images.contiguous(memory_format=torch.channels_last)
  labels = torch.randint(0, 10, (t['batch'],), device=device)

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=torch.bfloat16):
      loss = torch.nn.functional.cross_entropy(net(images), labels)
    loss.backward()
    opt.step()
    _torch_sync(device)

  fig = timing.time_steps(step, lambda r: r, t['warmup'], t['steps'])
  return [_row('train', 'train step', label, size, t['batch'] / fig['median_step_sec'], 'img/s')]


# (d) the run and its table --------------------------------------------------------------------------------


Job = tuple[str, dict[str, Any], Callable[[], list[dict[str, Any]]]]
ROWS_PREFIX = 'ACCEL_CHECK_ROWS '


def _environment(quick: bool, repeats: int) -> dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  from vision_jax.ops import dispatch  # pylint: disable=g-import-not-at-top

  _, interpret = dispatch.resolve_implementation('pallas')
  return {'backend': jax.default_backend(), 'device': str(jax.devices()[0].device_kind), 'jax': jax.__version__,
          'quick': quick, 'interpret_mode': interpret, 'repeats': repeats,
          'torch_device': _torch_device(jax.default_backend())[0]}


def jobs(quick: bool, repeats: int) -> list[Job]:
  """Every row group of (a)-(c) as (job id, template row, function returning its rows), in table order."""
  import jax  # pylint: disable=g-import-not-at-top
  from vision_jax.ops import dispatch  # pylint: disable=g-import-not-at-top

  sizes = SIZES['quick' if quick else 'full']
  _, interpret = dispatch.resolve_implementation('pallas')
  torch_device, torch_skip = _torch_device(jax.default_backend())
  out: list[Job] = [
      ('check_nms', _row('check', 'nms indices', 'pallas vs reference', f'N={sizes["check_nms"]}'),
       lambda: check_nms(sizes['check_nms'])),
      ('check_roi_align', _row('check', 'roi_align', 'pallas vs reference', _roi_size(sizes['roi'])),
       lambda: check_roi_align(sizes['roi']))]
  for n in sizes['nms']:
    for impl in ('pallas', 'reference'):
      out.append((f'nms_{impl}_{n}', _row('ops', 'nms', impl, f'N={n}'),
                  lambda n=n, impl=impl: time_nms(n, impl, repeats, interpret)))
    template = _row('ops', 'nms', 'torchvision', f'N={n}', status=torch_skip)
    out.append((f'nms_torch_{n}', template, lambda n=n, template=template: (
        time_nms_torch(n, torch_device, repeats) if torch_device else [template])))
  p = sizes['roi']
  for impl in ('pallas', 'reference'):
    out.append((f'roi_align_{impl}', _row('ops', 'roi_align fwd+bwd', impl, _roi_size(p)),
                lambda impl=impl: time_roi_align(p, impl, repeats, interpret)))
  template = _row('ops', 'roi_align fwd+bwd', 'torchvision', _roi_size(p), status=torch_skip)
  out.append(('roi_align_torch', template,
              lambda: time_roi_align_torch(p, torch_device, repeats) if torch_device else [template]))
  t = sizes['train']
  out.append(('train_ours', _row('train', 'train step', 'vision_jax (jit)', t['model']), lambda: time_train_ours(t)))
  template = _row('train', 'train step', 'torch AMP channels-last', t['model'], status=torch_skip)
  out.append(('train_torch', template, lambda: time_train_torch(t, torch_device) if torch_device else [template]))
  return out


def rows_from_process(command: list[str], template: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
  """Runs one job's `command` and returns the rows it printed, or `template` with why none came back.

  A kernel can take its process down (a segmentation fault on the first GPU run) or hang; in a child process
  that costs one row, reported as crashed (with the signal) or timed out, and the check goes on. The child's
  stderr (progress lines, tracebacks) passes through.
  """
  try:
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False)
  except subprocess.TimeoutExpired:
    status = f'error: timed out after {timeout:g} s'
  else:
    for line in reversed(proc.stdout.splitlines()):
      if line.startswith(ROWS_PREFIX):
        return json.loads(line[len(ROWS_PREFIX):])
    if proc.returncode < 0:
      status = f'error: crashed ({signal.Signals(-proc.returncode).name})'
    else:
      status = f'error: exit status {proc.returncode} and no rows (see stderr)'
  print(f'    {template["section"]}  {template["name"]}  {template["implementation"]}  {status}', file=sys.stderr,
        flush=True)
  return [{**template, 'status': status}]


def run_checks(quick: bool, repeats: int, only: list[str] | None = None, isolate: bool = False,
               job_timeout: float = 600.0) -> dict[str, Any]:
  """Runs (a)-(c) at the `quick` or full sizes; returns {'environment': ..., 'rows': [...], 'ok': bool}.

  Args:
    quick: the small sizes.
    repeats: timed repeats per op.
    only: job ids or their prefixes to run (e.g. ['check', 'nms_pallas']); None runs all.
    isolate: run each job in its own process (`--job=ID`), so a crash or a hang costs only its rows.
    job_timeout: seconds one isolated job may take.
  """
  rows: list[dict[str, Any]] = []
  selected = [j for j in jobs(quick, repeats) if only is None or any(j[0].startswith(o) for o in only)]
  for job_id, template, fn in selected:
    if isolate:
      command = [sys.executable, '-m', 'vision_jax.tools.accel_check', f'--job={job_id}', f'--repeats={repeats}']
      rows.extend(rows_from_process(command + (['--quick'] if quick else []), template, job_timeout))
    else:
      _guarded(rows, template, fn)
  ok = all(not (r['section'] == 'check' and r['status'] != 'ok') for r in rows)
  return {'environment': _environment(quick, repeats), 'rows': rows, 'ok': ok}


def run_job(job_id: str, quick: bool, repeats: int) -> list[dict[str, Any]]:
  """One job's rows, in this process (what an isolated child runs); `job_id` must be one of `jobs`' ids."""
  (job,) = [j for j in jobs(quick, repeats) if j[0] == job_id]
  rows: list[dict[str, Any]] = []
  _guarded(rows, job[1], job[2])
  return rows


def _unknown_job_error(only: list[str], quick: bool, repeats: int, whole: bool = False) -> str | None:
  """The one-line error for ids (`whole`) or prefixes in `only` that match no job, else None."""
  ids = [j[0] for j in jobs(quick, repeats)]
  unknown = [o for o in only if not any(i == o if whole else i.startswith(o) for i in ids)]
  if not unknown:
    return None
  return f'error: {",".join(unknown)} matches no job; pass ids or prefixes of: {", ".join(ids)}'


def format_table(result: dict[str, Any]) -> str:
  """The rows as an aligned text table, headed by the environment."""
  env = result['environment']
  mode = 'in interpret mode' if env['interpret_mode'] else 'compiled'
  head = (f'backend {env["backend"]} ({env["device"]}), jax {env["jax"]}, '
          f'{"quick" if env["quick"] else "full"} sizes, kernels {mode}, median of {env["repeats"]}'
          + (', each job in its own process' if env.get('isolated') else ''))
  header = ('section', 'name', 'implementation', 'size', 'value', 'unit', 'status')
  lines = [tuple(str(v) for v in header)]
  for r in result['rows']:
    value = r['value']
    shown = '-' if value is None else (f'{value:.2e}' if r['unit'] == 'max |diff|' else f'{value:,.2f}')
    lines.append((r['section'], r['name'], r['implementation'], r['size'], shown, r['unit'], r['status']))
  widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
  table = ['  '.join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines]
  return '\n'.join([head, *table, 'all checks passed' if result['ok'] else 'SOME CHECKS FAILED'])


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--quick', action='store_true', help='small sizes (CPU, CI)')
  parser.add_argument('--json', default='accel_check.json', help='where to write the figures')
  parser.add_argument('--repeats', type=int, default=0, help='timed repeats per op (0: 5, or 2 with --quick)')
  parser.add_argument('--only', default='', help='comma-separated job ids or prefixes, e.g. check,nms_pallas')
  parser.add_argument('--isolate', action=argparse.BooleanOptionalAction, default=None,
                      help='each job in its own process (default: on unless the backend is the CPU)')
  parser.add_argument('--job_timeout', type=float, default=600.0, help='seconds per isolated job')
  parser.add_argument('--job', default='', help=argparse.SUPPRESS)  # one job, rows on stdout (isolated child)
  args = parser.parse_args(argv)
  os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')  # leave device memory for the torch peers
  repeats = args.repeats or (2 if args.quick else 5)
  only = [o for o in (args.job or args.only).split(',') if o] or None
  error = only and _unknown_job_error(only, args.quick, repeats, whole=bool(args.job))
  if error:
    print(error, file=sys.stderr)
    return 2
  if args.job:
    print(ROWS_PREFIX + json.dumps(run_job(args.job, args.quick, repeats)), flush=True)
    return 0
  import jax  # pylint: disable=g-import-not-at-top
  isolate = args.isolate if args.isolate is not None else jax.default_backend() != 'cpu'
  start = time.perf_counter()
  result = run_checks(args.quick, repeats, only, isolate, args.job_timeout)
  result['environment']['wall_sec'] = round(time.perf_counter() - start, 1)
  result['environment']['isolated'] = isolate
  print(format_table(result))
  with open(args.json, 'w') as f:
    json.dump(result, f, indent=1)
  print(f'wrote {os.path.abspath(args.json)} ({result["environment"]["wall_sec"]} s)')
  return 0 if result['ok'] else 1


if __name__ == '__main__':
  sys.exit(main())
