"""The evaluators that turn eval-step outputs into metrics, against hand-made numbers: sums over batches,
gathered rows without padding and in dataset order, reset, metric-name collisions; and COCO mAP of padded
predictions against `coco_evaluate` of a hand-written COCO dict and against pycocotools."""

import numpy as np
import pytest

from vision_jax.evaluation.detection_coco import STAT_NAMES, coco_evaluate
from vision_jax.evaluation.evaluators import GatherEvaluator, SumEvaluator, coco_detection_metrics, merge_results

BATCHES = [  # two padded eval batches of 3 rows: the last row of the second one is padding
    {"loss": np.float32(1.5), "count": np.float32(3), "confusion": np.array([[2, 0], [1, 0]], np.int32),
     "embedding": np.array([[0, 1], [2, 3], [4, 5]], np.float32), "id": np.array([10, 11, 12]),
     "mask": np.array([True, True, True])},
    {"loss": np.float32(0.25), "count": np.float32(2), "confusion": np.array([[0, 1], [0, 1]], np.int32),
     "embedding": np.array([[6, 7], [8, 9], [99, 99]], np.float32), "id": np.array([13, 14, -1]),
     "mask": np.array([1, 1, 0], np.int32)},
]


def _mean_loss(totals):
  return {"loss": float(totals["loss"] / totals["count"]), "confusion": totals["confusion"]}


def test_sum_evaluator_adds_scalars_and_arrays_over_batches():
  evaluator = SumEvaluator(("loss", "count", "confusion"), _mean_loss)
  for batch in BATCHES:
    evaluator.update(batch)
  result = evaluator.result()
  assert result["loss"] == pytest.approx(1.75 / 5)
  np.testing.assert_array_equal(result["confusion"], [[2, 1], [1, 1]])
  assert result["confusion"].dtype == np.float64  # int32 per-batch counts cannot overflow in the totals


def test_sum_evaluator_reset_forgets_and_empty_pass_is_an_error():
  evaluator = SumEvaluator(("loss", "count", "confusion"), _mean_loss)
  evaluator.update(BATCHES[0])
  evaluator.reset()
  with pytest.raises(ValueError, match="before any update"):
    evaluator.result()
  evaluator.update(BATCHES[1])
  assert evaluator.result()["loss"] == pytest.approx(0.25 / 2)


def test_gather_evaluator_drops_padding_rows_and_keeps_dataset_order():
  seen = {}

  def finish(rows):
    seen.update(rows)
    return {"mean_norm": float(np.linalg.norm(rows["embedding"], axis=1).mean())}

  evaluator = GatherEvaluator(("embedding", "id"), finish)
  for batch in BATCHES:
    evaluator.update(batch)
  result = evaluator.result()
  np.testing.assert_array_equal(seen["id"], [10, 11, 12, 13, 14])
  np.testing.assert_array_equal(seen["embedding"], np.arange(10).reshape(5, 2))
  norms = [1, np.sqrt(13), np.sqrt(41), np.sqrt(85), np.sqrt(145)]
  assert result["mean_norm"] == pytest.approx(np.mean(norms))

  evaluator.reset()
  evaluator.update(BATCHES[1])
  np.testing.assert_array_equal(evaluator.gathered()["id"], [13, 14])


def test_gather_evaluator_reads_the_named_mask():
  evaluator = GatherEvaluator(("id",), lambda rows: {"n": len(rows["id"])}, mask_key="keep")
  evaluator.update({"id": np.array([1, 2, 3]), "keep": np.array([False, True, False])})
  assert evaluator.result() == {"n": 1} and evaluator.gathered()["id"].tolist() == [2]


def test_merge_results_is_the_union_and_refuses_a_metric_named_twice():
  loss = SumEvaluator(("loss", "count", "confusion"), _mean_loss)
  ids = GatherEvaluator(("id",), lambda rows: {"num_ids": len(rows["id"])})
  for batch in BATCHES:
    loss.update(batch)
    ids.update(batch)
  merged = merge_results([loss, ids])
  assert set(merged) == {"loss", "confusion", "num_ids"} and merged["num_ids"] == 5
  clash = GatherEvaluator(("id",), lambda rows: {"loss": 0.0})
  clash.update(BATCHES[0])
  with pytest.raises(ValueError, match=r"\['loss'\]"):
    merge_results([loss, clash])


# --- COCO mAP of padded predictions -------------------------------------------------------------------------------
# Two images, M = 3 ground-truth rows, D = 3 prediction rows; padding rows hold garbage that must not count.
ROWS = {
    "boxes": np.array([[[10, 10, 50, 60], [60, 20, 90, 40], [0, 0, 99, 99]],
                       [[5, 5, 25, 45], [0, 0, 0, 0], [1, 1, 80, 80]]], np.float32),
    "box_labels": np.array([[0, 2, -1], [1, -1, -1]], np.int32),
    "num_objects": np.array([2, 1], np.int32),
    "pred_boxes": np.array([[[12, 10, 50, 58], [0, 0, 99, 99], [60, 22, 88, 40]],
                            [[5, 6, 25, 44], [40, 40, 70, 70], [1, 1, 80, 80]]], np.float32),
    "pred_scores": np.array([[0.9, 0.99, 0.6], [0.8, 0.7, 0.95]], np.float32),
    "pred_labels": np.array([[0, 0, 2], [1, 1, 1]], np.int32),
    "pred_valid": np.array([[True, False, True], [True, True, False]]),
}


def _xywh(box):
  x1, y1, x2, y2 = (float(v) for v in box)
  return [x1, y1, x2 - x1, y2 - y1]


# The same data written out by hand in COCO form (category id = class index; only valid rows).
HAND_GT = {
    "images": [{"id": 0}, {"id": 1}],
    "categories": [{"id": 0}, {"id": 1}, {"id": 2}],
    "annotations": [
        {"id": 1, "image_id": 0, "category_id": 0, "bbox": [10, 10, 40, 50], "area": 2000.0, "iscrowd": 0},
        {"id": 2, "image_id": 0, "category_id": 2, "bbox": [60, 20, 30, 20], "area": 600.0, "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 40], "area": 800.0, "iscrowd": 0}],
}
HAND_DETS = [
    {"image_id": 0, "category_id": 0, "bbox": [12, 10, 38, 48], "score": float(np.float32(0.9))},
    {"image_id": 0, "category_id": 2, "bbox": [60, 22, 28, 18], "score": float(np.float32(0.6))},
    {"image_id": 1, "category_id": 1, "bbox": [5, 6, 20, 38], "score": float(np.float32(0.8))},
    {"image_id": 1, "category_id": 1, "bbox": [40, 40, 30, 30], "score": float(np.float32(0.7))},
]


def test_coco_detection_metrics_equal_coco_evaluate_of_the_hand_written_dict():
  got = coco_detection_metrics(ROWS)
  assert tuple(got) == STAT_NAMES
  assert got == coco_evaluate(HAND_GT, HAND_DETS)
  # Each ground truth is found (IoU 0.84 to 0.95) by its class's best-scored valid detection, before any false
  # positive: AP50 = 1; the IoU thresholds above 0.84 miss some, so AP < 1.
  assert got["AP50"] == pytest.approx(1.0) and 0 < got["AP"] < 1


def test_invalid_and_padding_rows_would_change_the_result():
  counted = dict(ROWS, pred_valid=np.ones_like(ROWS["pred_valid"]))  # a 0.99 false positive on image 0
  assert coco_detection_metrics(counted)["AP50"] < 1.0
  without_count = {k: v for k, v in ROWS.items() if k != "num_objects"}  # padding found by label -1 instead
  assert coco_detection_metrics(without_count) == coco_detection_metrics(ROWS)


def test_category_ids_and_prefix():
  ids = [3, 7, 11]
  got = coco_detection_metrics(ROWS, category_ids=ids, prefix="val_")
  remapped = {"images": HAND_GT["images"], "categories": [{"id": c} for c in ids],
              "annotations": [dict(a, category_id=ids[a["category_id"]]) for a in HAND_GT["annotations"]]}
  dets = [dict(d, category_id=ids[d["category_id"]]) for d in HAND_DETS]
  assert got == {f"val_{k}": v for k, v in coco_evaluate(remapped, dets).items()}


def test_coco_detection_metrics_match_pycocotools():
  pytest.importorskip("pycocotools")
  from vision_jax.bench.ops import pycocotools_stats  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  n, m, d, k = 12, 5, 8, 3
  num_objects = rng.integers(0, m + 1, n)
  xy = rng.uniform(0, 60, (n, m, 2))
  boxes = np.concatenate([xy, xy + rng.uniform(4, 40, (n, m, 2))], -1).astype(np.float32)
  labels = np.where(np.arange(m) < num_objects[:, None], rng.integers(0, k, (n, m)), -1).astype(np.int32)
  jitter = rng.normal(0, 3, (n, d, 4))
  source = rng.integers(0, m, (n, d))
  pred_boxes = (np.take_along_axis(boxes, source[..., None], 1) + jitter).astype(np.float32)
  pred_boxes[..., 2:] = np.maximum(pred_boxes[..., 2:], pred_boxes[..., :2] + 1)
  pred_labels = np.where(rng.uniform(size=(n, d)) < 0.8, np.take_along_axis(np.maximum(labels, 0), source, 1),
                         rng.integers(0, k, (n, d))).astype(np.int32)
  rows = {"boxes": boxes, "box_labels": labels, "num_objects": num_objects.astype(np.int32),
          "pred_boxes": pred_boxes, "pred_scores": rng.uniform(size=(n, d)).astype(np.float32),
          "pred_labels": pred_labels, "pred_valid": rng.uniform(size=(n, d)) < 0.7}
  ours = coco_detection_metrics(rows)
  gt = {"images": [{"id": i} for i in range(n)], "categories": [{"id": c} for c in range(k)],
        "annotations": [{"id": 1 + i * m + j, "image_id": i, "category_id": int(labels[i, j]),
                         "bbox": _xywh(boxes[i, j]), "area": _xywh(boxes[i, j])[2] * _xywh(boxes[i, j])[3],
                         "iscrowd": 0} for i in range(n) for j in range(num_objects[i])]}
  dets = [{"image_id": i, "category_id": int(pred_labels[i, j]), "bbox": _xywh(pred_boxes[i, j]),
           "score": float(rows["pred_scores"][i, j])} for i in range(n) for j in range(d) if rows["pred_valid"][i, j]]
  assert 0 < ours["AP"] < 1
  np.testing.assert_allclose([ours[s] for s in STAT_NAMES], pycocotools_stats(gt, dets), atol=1e-4, rtol=0)
