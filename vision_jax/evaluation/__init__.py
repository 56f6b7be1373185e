"""Evaluation metrics: classification (accuracy, top-k, confusion matrix), detection, segmentation."""

from vision_jax.evaluation.detection_coco import coco_evaluate
from vision_jax.evaluation.detection_voc import voc_ap
from vision_jax.evaluation.detection_voc import voc_evaluate
