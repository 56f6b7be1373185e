"""coco_mask_evaluate against pycocotools' COCOeval(iouType='segm') on random masks (several images and classes,
crowds, empty images and empty masks, all three area ranges, tied scores)."""

import contextlib
import io

import numpy as np
import pytest

from vision_jax.errors import DataError
from vision_jax.evaluation.detection_coco import STAT_NAMES
from vision_jax.evaluation.detection_masks import coco_mask_evaluate

mask_utils = pytest.importorskip("pycocotools.mask")


def ellipse(height, width, cy, cx, ry, rx):
  y, x = np.mgrid[:height, :width]
  return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def random_records(seed, num_images, categories, max_gt, max_dets):
  """Per-image ground truth and detections; radii from 1.5 to 90 px give small, medium and large masks."""
  rng = np.random.default_rng(seed)
  truth, found = [], []
  for _ in range(num_images):
    h, w = int(rng.integers(60, 240)), int(rng.integers(60, 240))
    shapes = [(rng.uniform(0, h), rng.uniform(0, w), *np.exp(rng.uniform(np.log(1.5), np.log(90), 2)))
              for _ in range(rng.integers(0, max_gt + 1))]
    if shapes and rng.uniform() < 0.4:  # a large object (area > 96**2) near the centre
      shapes[0] = (h / 2, w / 2, rng.uniform(0.35, 0.5) * h, rng.uniform(0.35, 0.5) * w)
    masks = [ellipse(h, w, *s) for s in shapes]
    labels = [int(rng.choice(categories)) for _ in shapes]
    crowd = [bool(rng.uniform() < 0.1) for _ in shapes]
    if shapes and rng.uniform() < 0.3:  # a duplicate ground truth: IoU ties
      masks.append(masks[0]), labels.append(labels[0]), crowd.append(False)
    d_masks, d_labels = [], []
    for _ in range(rng.integers(0, max_dets + 1)):
      if shapes and rng.uniform() < 0.7:
        j = int(rng.integers(len(shapes)))
        cy, cx, ry, rx = shapes[j]
        d_masks.append(ellipse(h, w, cy + rng.normal(0, 1), cx + rng.normal(0, 1), ry * rng.uniform(0.8, 1.2),
                               rx * rng.uniform(0.8, 1.2)))
        d_labels.append(labels[j] if rng.uniform() < 0.9 else int(rng.choice(categories)))
      else:
        d_masks.append(ellipse(h, w, rng.uniform(0, h), rng.uniform(0, w), *np.exp(rng.uniform(0, 4, 2))))
        d_labels.append(int(rng.choice(categories)))
    stack = lambda m: np.array(m, bool).reshape(-1, h, w)
    truth.append({"masks": stack(masks), "labels": np.array(labels, np.int64), "iscrowd": np.array(crowd, bool)})
    found.append({"masks": stack(d_masks), "labels": np.array(d_labels, np.int64),
                  "scores": np.round(rng.uniform(size=len(d_masks)), 2)})
  return truth, found


def pycocotools_segm(truth, found):
  """The 12 stats of pycocotools' COCOeval(..., 'segm') on the same records (masks as pycocotools RLE)."""
  from pycocotools.coco import COCO  # pylint: disable=import-outside-toplevel
  from pycocotools.cocoeval import COCOeval  # pylint: disable=import-outside-toplevel
  rle = lambda m: mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
  images, annotations, detections = [], [], []
  for i, (t, f) in enumerate(zip(truth, found)):
    images.append({"id": i, "height": t["masks"].shape[1], "width": t["masks"].shape[2]})
    for m, label, crowd in zip(t["masks"], t["labels"], t["iscrowd"]):
      annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label), "segmentation": rle(m),
                          "area": float(m.sum()), "iscrowd": int(crowd), "bbox": list(mask_utils.toBbox(rle(m)))})
    for m, label, score in zip(f["masks"], f["labels"], f["scores"]):
      detections.append({"image_id": i, "category_id": int(label), "segmentation": rle(m), "score": float(score)})
  categories = sorted({a["category_id"] for a in annotations} | {d["category_id"] for d in detections})
  with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in categories]}
    coco.createIndex()
    evaluator = COCOeval(coco, coco.loadRes(detections), "segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
  return np.array(evaluator.stats)


@pytest.mark.parametrize("seed,num_images,categories,max_gt,max_dets", [
    (0, 12, (1, 3, 7), 8, 25), (1, 6, (2, 5), 20, 120), (2, 15, (1, 2, 3, 4, 5), 3, 6)])
def test_equals_pycocotools_segm(seed, num_images, categories, max_gt, max_dets):
  truth, found = random_records(seed, num_images, categories, max_gt, max_dets)
  found[0]["masks"][:1] = False  # an empty detection mask
  truth[1] = {"masks": np.zeros((0,) + truth[1]["masks"].shape[1:], bool), "labels": np.zeros(0, np.int64),
              "iscrowd": np.zeros(0, bool)}  # an image without ground truth
  ours = coco_mask_evaluate(truth, found)
  theirs = pycocotools_segm(truth, found)
  assert tuple(ours) == STAT_NAMES
  values = np.array([ours[k] for k in STAT_NAMES])
  print(f"seed {seed}: max |ours - pycocotools| = {np.abs(values - theirs).max():.1e};", np.round(values, 3))
  np.testing.assert_allclose(values, theirs, atol=1e-12, rtol=0)
  assert np.all(theirs[:6] > 0)  # every area range has matched objects: the comparison is not vacuous


def test_perfect_detections_and_crowd_iou():
  gt = ellipse(64, 64, 30, 30, 20, 12)
  truth = [{"masks": gt[None], "labels": np.array([4])}]
  assert coco_mask_evaluate(truth, [{"masks": gt[None], "labels": [4], "scores": [0.9]}])["AP"] == pytest.approx(1.0)
  # A crowd region: IoU = intersection / detection area. A detection inside it is ignored, not a false positive.
  crowd = [{"masks": np.stack([gt, np.roll(gt, 40, 1)]), "labels": np.array([4, 4]), "iscrowd": [True, False]}]
  inner = np.zeros((64, 64), bool)
  inner[25:35, 25:33] = True
  dets = [{"masks": np.stack([inner, np.roll(gt, 40, 1)]), "labels": [4, 4], "scores": [0.95, 0.5]}]
  assert coco_mask_evaluate(crowd, dets)["AP"] == pytest.approx(1.0)


def test_bad_input():
  masks = np.zeros((1, 8, 8), bool)
  with pytest.raises(DataError, match="ground-truth records"):
    coco_mask_evaluate([{"masks": masks, "labels": [1]}], [])
  with pytest.raises(DataError, match="binarise"):
    coco_mask_evaluate([{"masks": masks, "labels": [1]}], [{"masks": masks * 0.5, "labels": [1], "scores": [1.0]}])
  with pytest.raises(DataError, match="paste"):
    coco_mask_evaluate([{"masks": masks, "labels": [1]}],
                       [{"masks": np.zeros((1, 4, 8), bool), "labels": [1], "scores": [1.0]}])
  with pytest.raises(DataError, match="scores"):
    coco_mask_evaluate([{"masks": masks, "labels": [1]}], [{"masks": masks, "labels": [1]}])
