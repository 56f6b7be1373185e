"""Every experiment config in configs/ loads, names a registered model and builds it at its input shape."""

import glob
import os

import jax
import pytest

from vision_jax import config_loading, models, tasks
from vision_jax.data.datasets import DatasetSpec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(os.path.join(REPO, "configs", "*.py"))
                 if os.path.basename(p) not in ("__init__.py", "common.py"))
STORED_SHAPE = {"mnist_embedded": (28, 28, 1), "cifar10": (32, 32, 3), "imagenet2012": (500, 375, 3)}


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_builds_its_model(path):
  config = config_loading.load_config(path)
  smoke = config_loading.load_config(path + ":smoke")
  assert smoke.num_train_steps > 0
  assert config.model.name in models.names()
  shape = STORED_SHAPE[config.dataset.name]
  if config.input.image_size:
    shape = (config.input.image_size, config.input.image_size, shape[-1])
  spec = DatasetSpec(config.dataset.name, "train", 1000, shape, 10, tuple(map(str, range(10))))
  task = tasks.get(config, spec)
  variables = jax.eval_shape(task.init_variables, jax.random.PRNGKey(0))
  assert "params" in variables
