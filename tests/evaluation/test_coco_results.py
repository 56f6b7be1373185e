"""COCO result records: hand-worked boxes and ids, masks read back by pycocotools' COCO.loadRes from the file."""

import contextlib
import io
import json
import os

import numpy as np
import pytest

from vision_jax.errors import DataError
from vision_jax.evaluation.coco_results import coco_results, write_coco_results

mask_utils = pytest.importorskip("pycocotools.mask")


def test_records_from_padded_detections():
  boxes = np.array([[[10, 20, 40, 60], [0, 0, 5, 5]], [[1.5, 2.5, 3.5, 8.0], [0, 0, 0, 0]]], np.float32)
  records = coco_results([42, 7], boxes, np.array([[0.9, 0.2], [0.5, 0.0]]), np.array([[2, 0], [1, -1]]),
                         class_ids=[1, 3, 18])
  assert records == [
      {"image_id": 42, "category_id": 18, "bbox": [10.0, 20.0, 30.0, 40.0], "score": pytest.approx(0.9)},
      {"image_id": 42, "category_id": 1, "bbox": [0.0, 0.0, 5.0, 5.0], "score": pytest.approx(0.2)},
      {"image_id": 7, "category_id": 3, "bbox": [1.5, 2.5, 2.0, 5.5], "score": pytest.approx(0.5)}]
  assert all(type(v) in (int, float) for r in records for v in [r["image_id"], r["score"], *r["bbox"]])


def test_masks_survive_the_file_and_pycocotools_loadres(tmp_path):
  from pycocotools.coco import COCO  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  sizes = [(30, 41), (17, 25)]
  masks = [rng.random((3, 30, 41)) < 0.3, rng.random((2, 17, 25))]  # bool, then probabilities
  boxes = [rng.uniform(0, 20, (3, 4)), rng.uniform(0, 20, (2, 4))]
  labels = [np.array([0, 1, 0]), np.array([1, 1])]
  scores = [rng.random(3), rng.random(2)]
  records = coco_results([1, 2], boxes, scores, labels, masks=masks)
  path = os.path.join(tmp_path, "out", "segm.json")
  write_coco_results(path, records)
  assert os.listdir(os.path.dirname(path)) == ["segm.json"]  # no temporary file left behind
  with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO()
    gt.dataset = {"images": [{"id": i + 1, "height": h, "width": w} for i, (h, w) in enumerate(sizes)],
                  "annotations": [], "categories": [{"id": 0}, {"id": 1}]}
    gt.createIndex()
    loaded = gt.loadRes(path)
  anns = [loaded.anns[k] for k in sorted(loaded.anns)]
  expected = [m for m in masks[0]] + [m > 0.5 for m in masks[1]]
  assert len(anns) == 5
  for ann, mask in zip(anns, expected):
    np.testing.assert_array_equal(loaded.annToMask(ann), mask)
    assert mask_utils.area(ann["segmentation"]) == mask.sum()
  with open(path, encoding="utf-8") as f:
    assert json.load(f) == json.loads(json.dumps(records))
  write_coco_results(path, records[:1])  # replaces the file
  with open(path, encoding="utf-8") as f:
    assert len(json.load(f)) == 1


def test_mismatched_inputs():
  with pytest.raises(DataError, match="one entry per image"):
    coco_results([1, 2], [np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0)])
  with pytest.raises(DataError, match="one of each per detection"):
    coco_results([1], [np.zeros((2, 4))], [np.zeros(2)], [np.zeros(2)], masks=[np.zeros((1, 4, 4), bool)])
