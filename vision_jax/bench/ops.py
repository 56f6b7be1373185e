"""CPU (or current backend) timings of the detection ops, and coco_evaluate against pycocotools.

  python -m vision_jax.bench.ops                # NMS 1k/10k, RoIAlign fwd+bwd, FPN RoIAlign routed vs masked
  python -m vision_jax.bench.ops --coco         # also coco_evaluate vs pycocotools, 5,000 images x 100
  python -m vision_jax.bench.ops --torchvision  # the same NMS/RoIAlign inputs through torchvision.ops
                                                # (in a venv with torch; imports no jax)

Inputs come from fixed NumPy seeds, so both sides time the same problems.
"""

import argparse
import statistics
import time

import numpy as np

NMS_SIZES = (1_000, 10_000)
ROI = dict(k=512, c=256, h=200, w=272, out=7, sampling=2, scale=0.25)


def nms_inputs(n: int, seed: int = 0):
  """Clustered boxes (as detector outputs are) and uniform scores."""
  rng = np.random.default_rng(seed)
  centres = rng.uniform(0, 1000, (max(n // 20, 1), 2))
  c = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 15, (n, 2))
  wh = rng.uniform(20, 120, (n, 2))
  return np.concatenate([c - wh / 2, c + wh / 2], 1).astype(np.float32), rng.uniform(size=n).astype(np.float32)


def roi_inputs(seed: int = 0, p: dict | None = None):
  """Features `[1, h, w, c]`, `k` boxes of 16..400 image pixels, their batch index and a cotangent (sizes `p`)."""
  rng = np.random.default_rng(seed)
  p = p or ROI
  feats = rng.normal(size=(1, p['h'], p['w'], p['c'])).astype(np.float32)
  img_h, img_w = p['h'] / p['scale'], p['w'] / p['scale']
  xy = rng.uniform(0, 1, (p['k'], 2)) * [img_w, img_h]
  wh = np.exp(rng.uniform(np.log(16), np.log(400), (p['k'], 2)))
  boxes = np.concatenate([xy, np.minimum(xy + wh, [img_w, img_h])], 1).astype(np.float32)
  cot = rng.normal(size=(p['k'], p['out'], p['out'], p['c'])).astype(np.float32)
  return feats, boxes, np.zeros(p['k'], np.int32), cot


def forward_and_backward(form, inputs, cotangent):
  """`form(inputs)` and its input gradient at `cotangent`; returning both keeps the forward from being dropped."""
  import jax  # pylint: disable=g-import-not-at-top
  out, vjp = jax.vjp(form, inputs)
  return out, vjp(cotangent)[0]


def median_time(fn, repeats: int = 5) -> float:
  fn()  # warm-up / compile
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def bench_jax(repeats: int):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vision_jax.ops.nms import nms  # pylint: disable=g-import-not-at-top
  from vision_jax.ops.roi_align import roi_align  # pylint: disable=g-import-not-at-top

  print(f'backend: {jax.default_backend()}, jax {jax.__version__}')
  for n in NMS_SIZES:
    b, s = map(jnp.asarray, nms_inputs(n))
    fn = jax.jit(lambda b, s, n=n: nms(b, s, 0.5, n))
    t = median_time(lambda: jax.block_until_ready(fn(b, s)), repeats)
    kept = int(fn(b, s)[1])
    print(f'nms            N={n:>6}  iou=0.5  max_out=N   kept={kept:>5}  {t * 1e3:9.2f} ms')
  p = ROI
  f, bx, bi, cot = map(jnp.asarray, roi_inputs())
  fwd = jax.jit(lambda f: roi_align(f, bx, bi, (p['out'],) * 2, p['scale'], p['sampling'], True))

  def fwd_bwd(f):
    out, vjp = jax.vjp(lambda x: roi_align(x, bx, bi, (p['out'],) * 2, p['scale'], p['sampling'], True), f)
    return out, vjp(cot)[0]

  fb = jax.jit(fwd_bwd)
  t_f = median_time(lambda: jax.block_until_ready(fwd(f)), repeats)
  t_fb = median_time(lambda: jax.block_until_ready(fb(f)), repeats)
  print(f'roi_align      K={p["k"]} C={p["c"]} {p["h"]}x{p["w"]} {p["out"]}x{p["out"]} sr={p["sampling"]}  '
        f'fwd {t_f * 1e3:9.2f} ms   fwd+bwd {t_fb * 1e3:9.2f} ms')
  bench_multilevel(repeats)


def pyramid_inputs(seed: int = 0):
  """P2..P5 maps of one 800x1088 image (P2 as `ROI`'s map) and `ROI['k']` boxes of every level."""
  rng = np.random.default_rng(seed)
  p = ROI
  feats = [rng.normal(size=(1, p['h'] >> i, p['w'] >> i, p['c'])).astype(np.float32) for i in range(4)]
  img_h, img_w = p['h'] * 4, p['w'] * 4
  xy = rng.uniform(0, 1, (p['k'], 2)) * [img_w, img_h]
  wh = np.exp(rng.uniform(np.log(32), np.log(800), (p['k'], 2)))
  boxes = np.concatenate([xy, np.minimum(xy + wh, [img_w, img_h])], 1).astype(np.float32)
  cot = rng.normal(size=(p['k'], p['out'], p['out'], p['c'])).astype(np.float32)
  return feats, boxes, np.zeros(p['k'], np.int32), cot


def masked_multilevel_roi_align(features, boxes, box_batch_index, output_size, levels, sampling_ratio):
  """The unrouted FPN RoIAlign (before issue 21): every level pooled for every box, the box's level kept."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vision_jax.ops.roi_align import fpn_levels, roi_align  # pylint: disable=g-import-not-at-top

  lvl = fpn_levels(boxes, min(levels), max(levels))
  out = 0
  for feat, level in zip(features, levels):
    pooled = roi_align(feat, boxes, box_batch_index, output_size, 2.0**-level, sampling_ratio)
    out = jnp.where((lvl == level)[:, None, None, None], pooled, out)
  return out


def bench_multilevel(repeats: int):
  """Routed `multilevel_roi_align` (one level per box) against the masked form, forward + backward."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vision_jax.ops.roi_align import fpn_levels, multilevel_roi_align  # pylint: disable=g-import-not-at-top

  p, levels = ROI, (2, 3, 4, 5)
  feats, bx, bi, cot = pyramid_inputs()
  feats, bx, bi, cot = [jnp.asarray(f) for f in feats], jnp.asarray(bx), jnp.asarray(bi), jnp.asarray(cot)
  size = (p['out'],) * 2
  forms = {'routed': lambda fs: multilevel_roi_align(fs, bx, bi, size, levels, p['sampling'])[0],
           'masked': lambda fs: masked_multilevel_roi_align(fs, bx, bi, size, levels, p['sampling'])}
  times, results = {}, {}
  for name, form in forms.items():
    fb = jax.jit(lambda fs, form=form: forward_and_backward(form, fs, cot))
    results[name] = (jax.jit(form)(feats), fb(feats))
    times[name] = median_time(lambda fb=fb: jax.block_until_ready(fb(feats)), repeats)
  diff_out = float(jnp.max(jnp.abs(results['routed'][0] - results['masked'][0])))
  diff_grad = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(results['routed'][1], results['masked'][1]))
  counts = np.bincount(np.asarray(fpn_levels(bx, 2, 5)) - 2, minlength=4).tolist()
  print(f'fpn roi_align  4 levels P2 {p["h"]}x{p["w"]} K={p["k"]} C={p["c"]} boxes/level={counts}  fwd+bwd '
        f'routed {times["routed"] * 1e3:9.2f} ms   masked {times["masked"] * 1e3:9.2f} ms   '
        f'speed-up {times["masked"] / times["routed"]:.2f}x   max |diff| out {diff_out:.1e} grad {diff_grad:.1e}')


def bench_torchvision(repeats: int):
  import torch  # pylint: disable=g-import-not-at-top
  from torchvision import ops  # pylint: disable=g-import-not-at-top

  print(f'torch {torch.__version__}, threads {torch.get_num_threads()}')
  for n in NMS_SIZES:
    b, s = map(torch.from_numpy, nms_inputs(n))
    t = median_time(lambda: ops.nms(b, s, 0.5), repeats)
    print(f'torchvision nms N={n:>6}  kept={len(ops.nms(b, s, 0.5)):>5}  {t * 1e3:9.2f} ms')
  p = ROI
  f, bx, bi, cot = roi_inputs()
  fn = torch.from_numpy(f).permute(0, 3, 1, 2).contiguous()
  rois = torch.cat([torch.from_numpy(bi).float()[:, None], torch.from_numpy(bx)], 1)
  g = torch.from_numpy(cot).permute(0, 3, 1, 2).contiguous()

  def fwd():
    with torch.no_grad():
      return ops.roi_align(fn, rois, (p['out'],) * 2, p['scale'], p['sampling'], True)

  def fwd_bwd():
    x = fn.clone().requires_grad_(True)
    ops.roi_align(x, rois, (p['out'],) * 2, p['scale'], p['sampling'], True).backward(g)

  print(f'torchvision roi_align  fwd {median_time(fwd, repeats) * 1e3:9.2f} ms   '
        f'fwd+bwd {median_time(fwd_bwd, repeats) * 1e3:9.2f} ms')


def coco_inputs(num_images: int, dets_per_image: int, num_cats: int = 80, seed: int = 0):
  """COCO-format ground truth (about 7 boxes per image, 5% crowd) and `dets_per_image` detections each."""
  rng = np.random.default_rng(seed)
  anns, dets = [], []
  for img in range(1, num_images + 1):
    n = rng.integers(0, 15)
    xy = rng.uniform(0, 500, (n, 2))
    wh = np.exp(rng.uniform(np.log(4), np.log(300), (n, 2)))
    cats = rng.integers(1, num_cats + 1, n)
    for j in range(n):
      anns.append({'id': len(anns) + 1, 'image_id': img, 'category_id': int(cats[j]),
                   'bbox': [*map(float, xy[j]), *map(float, wh[j])], 'area': float(wh[j, 0] * wh[j, 1]),
                   'iscrowd': int(rng.uniform() < 0.05)})
    pick = rng.integers(0, max(n, 1), dets_per_image)
    near = (rng.uniform(size=dets_per_image) < 0.5) & (n > 0)
    dxy = np.where(near[:, None], xy[pick] if n else 0, rng.uniform(0, 500, (dets_per_image, 2)))
    dwh = np.where(near[:, None], wh[pick] if n else 1, np.exp(rng.uniform(np.log(4), np.log(300),
                                                                           (dets_per_image, 2))))
    box = np.concatenate([dxy + rng.normal(0, 4, dxy.shape), dwh * rng.uniform(0.8, 1.2, dwh.shape)], 1)
    dcat = np.where(near, cats[pick] if n else 1, rng.integers(1, num_cats + 1, dets_per_image))
    for j in range(dets_per_image):
      dets.append({'image_id': img, 'category_id': int(dcat[j]), 'bbox': [float(v) for v in box[j]],
                   'score': float(rng.uniform())})
  gt = {'images': [{'id': i} for i in range(1, num_images + 1)], 'annotations': anns,
        'categories': [{'id': c} for c in range(1, num_cats + 1)]}
  return gt, dets


def pycocotools_stats(gt, dets) -> np.ndarray:
  """The 12 `COCOeval(..., 'bbox')` statistics from pycocotools (ImportError if it is not installed)."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  from pycocotools.coco import COCO  # pylint: disable=g-import-not-at-top
  from pycocotools.cocoeval import COCOeval  # pylint: disable=g-import-not-at-top

  with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(dets), 'bbox')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
  return np.array(ev.stats)


def bench_coco(num_images: int, dets_per_image: int):
  from vision_jax.evaluation.detection_coco import STAT_NAMES  # pylint: disable=g-import-not-at-top
  from vision_jax.evaluation.detection_coco import coco_evaluate  # pylint: disable=g-import-not-at-top

  gt, dets = coco_inputs(num_images, dets_per_image)
  t = time.perf_counter()
  ours = coco_evaluate(gt, dets)
  t_ours = time.perf_counter() - t
  print(f'coco_evaluate  {num_images} images x {dets_per_image} dets: {t_ours:8.2f} s')
  try:
    t = time.perf_counter()
    ref = pycocotools_stats(gt, dets)
    t_ref = time.perf_counter() - t
  except ImportError:
    print('pycocotools not installed: no comparison')
    return
  diff = max(abs(ours[k] - v) for k, v in zip(STAT_NAMES, ref))
  print(f'pycocotools    {num_images} images x {dets_per_image} dets: {t_ref:8.2f} s   '
        f'speed-up {t_ref / t_ours:5.1f}x   max |stat difference| {diff:.2e}')


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--torchvision', action='store_true', help='time torchvision.ops instead of vision_jax')
  parser.add_argument('--coco', action='store_true', help='also time coco_evaluate against pycocotools')
  parser.add_argument('--coco-images', type=int, default=5000)
  parser.add_argument('--coco-dets', type=int, default=100)
  args = parser.parse_args()
  for name in ('repeats', 'coco_images', 'coco_dets'):
    if getattr(args, name) < 1:
      parser.error(f"--{name.replace('_', '-')}={getattr(args, name)}; use 1 or more")
  if args.torchvision:
    bench_torchvision(args.repeats)
    return
  bench_jax(args.repeats)
  if args.coco:
    bench_coco(args.coco_images, args.coco_dets)


if __name__ == '__main__':
  main()
