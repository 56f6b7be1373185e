"""Every registered classifier maps [N, H, W, C] to [N, num_classes] in train and eval mode; a few small ones
run a real training-mode apply (batch-norm statistics update, dropout rng) and a gradient step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vision_jax import models
from vision_jax.errors import UserError

# Smallest sensible input per model (the architecture's own minimum where it has one).
MIN_INPUT = {"alexnet": 63, "lenet5": 32, "lenet5_relu": 28, "inception_v3": 75, "keras_inception_v3": 75,
             "xception": 71}


def _input_shape(name):
  size = MIN_INPUT.get(name, 32)
  return (2, size, size, 1 if name.startswith("lenet") else 3)


@pytest.mark.parametrize("name", sorted(set(models.names()) - set(models.NOT_IMAGE_CLASSIFIERS)))
def test_logits_shape_in_training_mode(name):  # the others: tests/models/test_multi_io_models.py
  # (Eval mode is traced by every parameter-count test.)
  model = models.get(name, num_classes=7)
  x = jnp.zeros(_input_shape(name))
  rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  out, variables = jax.eval_shape(lambda x: model.init_with_output(rngs, x, train=True), x)
  assert out.shape == (2, 7), (name, out.shape)
  assert set(variables) <= {"params", "batch_stats"}


@pytest.mark.parametrize("name,kwargs,size,n_aux", [("googlenet", {"aux_logits": True}, 224, 2),
                                                    ("inception_v3", {"aux_logits": True}, 299, 1)])
def test_aux_heads_are_opt_in(name, kwargs, size, n_aux):
  x = jnp.zeros((1, size, size, 3))
  init = lambda m: jax.eval_shape(lambda x: m.init_with_output(jax.random.key(0), x), x)[0]
  out = init(models.get(name, num_classes=5, **kwargs))
  assert isinstance(out, tuple) and len(out) == 1 + n_aux and all(o.shape == (1, 5) for o in out)
  assert init(models.get(name, num_classes=5)).shape == (1, 5)


@pytest.mark.parametrize("name,size", [("little_vgg", 16)])
def test_training_step_updates_state_and_lowers_loss(name, size):
  model = models.get(name, num_classes=4)
  x = jax.random.normal(jax.random.key(0), (4, size, size, 3))
  y = jnp.arange(4)
  variables = model.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, x, train=False)
  params, state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  def loss_fn(params, state, key):
    logits, new_state = model.apply({"params": params, **state}, x, train=True, rngs={"dropout": key},
                                    mutable=list(state))
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new_state

  @jax.jit
  def step(params, state, opt, key):
    (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, key)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), new_state, opt, loss

  losses = []
  for i in range(5):
    params, new_state, opt, loss = step(params, state, opt, jax.random.key(10 + i))
    if state:
      changed = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state, dict(new_state)))
      assert any(changed), "batch statistics did not update in training mode"
    state = dict(new_state)
    losses.append(float(loss))
  assert np.isfinite(losses).all() and losses[-1] < losses[0], losses


def test_unknown_model_and_bad_argument_are_user_errors():
  with pytest.raises(UserError, match="resnet18"):
    models.get("resnet81")
  with pytest.raises(UserError, match="does not accept"):
    models.get("resnet18", num_clases=3)
