"""Every experiment config loads, names a registered model and builds it at the input shape it feeds."""

import glob
import os

import jax
import pytest

from vision_jax import config_loading, models, tasks
from vision_jax.data import datasets, synthetic
from vision_jax.data.features import DatasetSpec
from vision_jax.tasks import input_problem
from tests.offline_specs import OFFLINE_SPECS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "configs", "*.py"))
                 if os.path.basename(p) not in ("__init__.py", "common.py", "bench.py"))
FAMILIES = ["lenet5", "little_vgg", "alexnet", "vgg16", "resnet18_cifar", "resnet50", "googlenet", "inception_v3",
            "xception", "mobilenet_v1", "mobilenet_v2", "efficientnet_b0", "densenet121", "nin", "simple_cnn"]
IMAGENET = ["alexnet", "vgg16", "resnet50", "googlenet", "inception_v3", "xception", "mobilenet_v1",
            "mobilenet_v2", "efficientnet_b0", "densenet121"]
CASES = ([(c, "") for c in CONFIGS] + [("digits.py", f"model={m}") for m in FAMILIES]
         + [("cifar10.py", f"model={m}") for m in ("little_vgg", "resnet18_cifar", "nin", "simple_cnn")]
         + [("imagenet2012.py", f"model={m}") for m in IMAGENET])


@pytest.mark.parametrize("name,arg", CASES, ids=[f"{c}:{a}" for c, a in CASES])
def test_config_builds_its_model(name, arg):
  path = os.path.join(REPO, "configs", name)
  config = config_loading.load_config(f"{path}:{arg}" if arg else path)
  smoke = config_loading.load_config(f"{path}:{arg},smoke" if arg else f"{path}:smoke")
  assert 0 < smoke.num_train_steps <= 20
  if input_problem.is_input_problem(config.task):  # optimises an image: it builds its first image
    image = jax.eval_shape(input_problem.get_problem(config).init_image, jax.random.PRNGKey(0))
    assert all(leaf.ndim == 4 for leaf in jax.tree.leaves(image))
    return
  if config.task in ("classification", "multi_head"):
    assert config.model.name in models.names()
  if config.dataset.name in synthetic.NAMES:  # generated in memory: its real spec, with its extra features
    _, spec = datasets.load(config.dataset.name, "test")
  else:
    assert config.dataset.name in OFFLINE_SPECS, f"add a spec for {config.dataset.name!r} to tests/offline_specs.py"
    spec = OFFLINE_SPECS[config.dataset.name]()
    if config.input.image_size and config.task == "classification":
      spec = DatasetSpec(spec.name, "train", 1000, (config.input.image_size, config.input.image_size,
                                                    spec.image_shape[-1]), spec.num_classes, spec.class_names)
  task = tasks.get(config, spec)
  if config.task not in ("classification", "multi_head"):  # other families: every network initialises
    variables = jax.eval_shape(task.init_variables, jax.random.PRNGKey(0))
    assert set(variables) == set(task.networks())
    return
  variables = jax.eval_shape(task.init_variables, jax.random.PRNGKey(0))["model"]
  if config.task == "multi_head":
    inputs = [jax.numpy.zeros((2,) + input_shape) for input_shape in task.input_shapes()]
    outputs = jax.eval_shape(task.outputs, variables, inputs)
    assert {k: v.shape for k, v in outputs.items()} == {h.name: (2, h.width) for h in task.heads}
    return
  logits = jax.eval_shape(lambda v: task.model.apply(v, jax.numpy.zeros((2,) + task.input_shape())), variables)
  assert logits.shape == (2, spec.num_classes)
