"""Every image classifier of the zoo trains through configs/digits.py (the config `python -m vision_jax.main`
reads) at the input shape that config feeds it: a few train steps, a checkpoint and an evaluation.

CI runs a cheap member of four families (most of the time goes to compiling the step); every other registered
image classifier, and googlenet and inception_v3 (at 299x299) with their auxiliary heads, run under `-m slow`.
The 20-step `configs/digits.py:model=<name>,smoke` run of every model is the command-line form of this check.
Also under `-m slow`: every image classifier's config for its real dataset (mnist, cifar10 or imagenet2012 by
TFDS name) builds it at the input shape that config feeds (tests/test_all_configs.py does one per family in CI).
"""

import math
import os

import jax
import numpy as np
import pytest

from tests import test_all_configs as all_configs
from vision_jax import config_loading, models, train
from vision_jax.train_lib.checkpoint import load_state_arrays

DIGITS = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "configs", "digits.py")
STEPS, EVAL_EXAMPLES = 3, 64
# Cheap members of four families (20-40 s each on the loaded 2-core machine, mostly compiling); lenet5_relu runs
# in tests/training/test_train_smoke.py and the aux-head loss in test_aux_logits.py. (name, aux heads on)
FAST = [("little_vgg", False), ("nin", False), ("resnet18_cifar", False), ("mobilenet_v1", False)]
SLOW = sorted([(name, False) for name in models.names()
               if name not in models.NOT_IMAGE_CLASSIFIERS and (name, False) not in FAST]
              + [("googlenet", True), ("inception_v3", True)])


def run_smoke(name, aux, data_dir, workdir):
  """Trains `name` for STEPS steps of batch 8 on the digits and evaluates it on EVAL_EXAMPLES test digits."""
  config = config_loading.load_config(f"{DIGITS}:model={name},smoke{',aux' if aux else ''}")
  config.dataset.data_dir = data_dir
  config.dataset.eval_split = f"test[:{EVAL_EXAMPLES}]"
  config.input.batch_size, config.input.eval_batch_size = 8, EVAL_EXAMPLES
  config.num_train_steps = config.eval_every_steps = config.checkpoint.every_steps = STEPS
  config.log_every_steps = 1
  config.eval.misclassified = 0
  return train.train_and_evaluate(config, workdir)


def check(name, aux, data_dir, workdir):
  summary = run_smoke(name, aux, data_dir, workdir)
  assert summary["model"] == name and summary["steps"] == STEPS and summary["stop_reason"] == "completed"
  final = summary["final_eval"]
  assert final["num_examples"] == EVAL_EXAMPLES and math.isfinite(final["loss"]) and 0 <= final["accuracy"] <= 1
  state = load_state_arrays(workdir)
  assert int(state["step"]) == STEPS
  assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state["params"]))
  if aux:  # the auxiliary heads were built and trained
    assert any(key.startswith("aux") or key == "AuxLogits" for key in state["params"])


@pytest.mark.parametrize("name,aux", FAST, ids=[f"{n}{'-aux' if a else ''}" for n, a in FAST])
def test_smoke_train(name, aux, data_dir, tmp_path):
  check(name, aux, data_dir, str(tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.parametrize("name,aux", SLOW, ids=[f"{n}{'-aux' if a else ''}" for n, a in SLOW])
def test_smoke_train_slow(name, aux, data_dir, tmp_path):
  check(name, aux, data_dir, str(tmp_path / "run"))


# The real dataset of each image classifier: MNIST for LeNet-5 (the embedded sample; `dataset=mnist` takes the
# full one once prepared), CIFAR-10 for the small networks, ImageNet otherwise.
CIFAR_MODELS = ("little_vgg", "nin", "simple_cnn", "resnet18_cifar", "resnet34_cifar", "resnet50_cifar")


def real_dataset_config(name):
  """(config file, argument) of `name`'s config for its real dataset."""
  if name.startswith("lenet5"):
    return "mnist_lenet.py", f"model={name}"
  return ("cifar10.py" if name in CIFAR_MODELS else "imagenet2012.py"), f"model={name}"


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in models.names() if n not in models.NOT_IMAGE_CLASSIFIERS])
def test_real_dataset_config_builds(name):
  all_configs.test_config_builds_its_model(*real_dataset_config(name))
