"""Task wrappers: each owns its model, loss, metrics and the bodies of its train and eval steps."""

from __future__ import annotations

import ml_collections

from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.tasks.array_classification import ArrayClassificationTask
from vision_jax.tasks.classification import ClassificationTask
from vision_jax.tasks.multi_head import MultiHeadTask

_TASKS = {"classification": ClassificationTask, "multi_head": MultiHeadTask}


def get(config: ml_collections.ConfigDict, spec: DatasetSpec):
  """Builds the task named by `config.task` for a dataset split."""
  if config.task not in _TASKS:
    raise ConfigError(f"unknown task {config.task!r}; known tasks: {', '.join(sorted(_TASKS))}")
  if config.task == "classification" and len(spec.image_shape) != 3:  # signals, volumes: no image ops
    return ArrayClassificationTask(config, spec)
  return _TASKS[config.task](config, spec)
