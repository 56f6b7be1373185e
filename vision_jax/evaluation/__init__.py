"""Evaluation metrics: classification (accuracy, top-k, confusion matrix), detection, segmentation."""
