"""LeNet-5 in both forms: the paper's 61,706 parameters, output shapes and shape errors."""

import jax
import jax.numpy as jnp
import pytest

from vision_jax import models
from vision_jax.errors import UserError


def _count(name, size):
  variables = jax.eval_shape(models.get(name).init, jax.random.PRNGKey(0), jnp.zeros((1, size, size, 1)))
  return sum(x.size for x in jax.tree.leaves(variables))


def test_parameter_counts():
  # C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850 = 61,706 (LeCun et al. 1998, 10 outputs).
  assert _count("lenet5", 32) == 61_706
  assert _count("lenet5_relu", 28) == 61_706


def test_logits_shape_and_wrong_input_size():
  model = models.get("lenet5", num_classes=7)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 32, 32, 1)))
  assert model.apply(variables, jnp.zeros((2, 32, 32, 1))).shape == (2, 7)
  with pytest.raises(UserError, match=r"expects images \[N, 32, 32, C\], got shape \(2, 28, 28, 1\)"):
    model.apply(variables, jnp.zeros((2, 28, 28, 1)))


def test_unknown_model_names_close_matches():
  with pytest.raises(UserError, match="unknown model 'lenet6'.*Did you mean"):
    models.get("lenet6")
