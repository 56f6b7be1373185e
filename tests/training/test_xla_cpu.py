"""The CPU train-step rewrites (`vision_jax.backends.cpu.rewrites.train_step_rewrites`) change speed, not numbers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import models
from vision_jax.backends.cpu import rewrites as xla_cpu
from vision_jax.backends.cpu import channel_stats


class _StridedNet(nn.Module):
  """Every case the rewrites handle or pass through: strided 3x3/1x1, SAME/int/explicit padding, BN options."""

  @nn.compact
  def __call__(self, x, train=True):
    x = nn.Conv(8, (3, 3), padding=1, name="first")(x)  # 1 input channel, stride 1: few-channel form
    x = nn.Conv(16, (3, 3), strides=2, padding="SAME", name="stem")(x)  # 8 channels, strided: XLA conv + bias
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.8, name="bn0")(x))
    y = nn.Conv(24, (3, 3), strides=2, padding=1, use_bias=False, name="down")(x)
    y = nn.BatchNorm(use_running_average=not train, use_scale=False, epsilon=1e-3, name="bn1")(y)
    x = y + nn.Conv(24, (1, 1), strides=(2, 2), padding="VALID", name="shortcut")(x)
    x = nn.Conv(24, (3, 3), strides=(2, 1), padding=((1, 1), (0, 2)), feature_group_count=2, name="grouped")(x)
    x = nn.BatchNorm(use_running_average=not train, use_bias=False, name="bn2")(nn.relu(x))
    return nn.Dense(5)(x.mean(axis=(1, 2)))


def _loss_grads_stats(model, variables, images, rewrites):
  def loss(params):
    with xla_cpu.train_step_rewrites(rewrites):
      out, updates = model.apply({**variables, "params": params}, images, train=True, mutable=["batch_stats"])
    return jnp.sum(jnp.sin(out)), updates.get("batch_stats", {})
  (value, stats), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
  return value, grads, stats


def _assert_same(model, images):
  variables = model.init(jax.random.PRNGKey(0), images, train=True)
  ours = _loss_grads_stats(model, variables, images, True)
  plain = _loss_grads_stats(model, variables, images, False)
  np.testing.assert_allclose(ours[0], plain[0], rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree_util.tree_leaves(ours[1:]), jax.tree_util.tree_leaves(plain[1:])):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_handled_and_passed_through_layers_match_flax():
  images = jax.random.normal(jax.random.PRNGKey(1), (4, 16, 16, 1))
  _assert_same(_StridedNet(), images)


# Batch norm over few values is ill-conditioned (at batch 2 and 32x32 ResNet's last stage normalizes 2 numbers
# and float32 rounding of the statistics moves the loss by 7e-4), so its check uses 16 values per channel there.
# LeNet-5 covers the 1-channel, patch-gradient (6 -> 16 channels on 14x14) and full-window (C5) forms.
@pytest.mark.parametrize("name,shape", [("resnet18", (4, 64, 64, 3)), ("lenet5", (4, 32, 32, 1)),
                                        ("lenet5_relu", (4, 28, 28, 1))])
def test_registry_model_matches_flax(name, shape):
  _assert_same(models.get(name, num_classes=10), jax.random.normal(jax.random.PRNGKey(2), shape))


def test_lenet_layers_take_the_forms_the_plan_names():
  model, images = models.get("lenet5_relu", num_classes=10), jnp.ones((2, 28, 28, 1))
  variables = model.init(jax.random.PRNGKey(0), images)

  def forward(rewrites):
    with xla_cpu.train_step_rewrites(rewrites):
      return str(jax.make_jaxpr(lambda v: model.apply(v, images))(variables))

  # conv1 becomes shifted products, conv3 (5x5 kernel on 5x5 maps) a matrix product; conv2 keeps its forward
  # convolution inside the custom-gradient call.
  assert forward(False).count("conv_general_dilated[") == 3
  assert forward(True).count("conv_general_dilated[") == 1
  assert forward(True).count("dot_general[") == forward(False).count("dot_general[") + 1


def test_rewrites_replace_the_layers_they_claim():
  model, images = _StridedNet(), jnp.ones((2, 16, 16, 1))
  variables = model.init(jax.random.PRNGKey(0), images)

  def grads(rewrites):
    def loss(params):
      with xla_cpu.train_step_rewrites(rewrites):
        out, _ = model.apply({**variables, "params": params}, images, mutable=["batch_stats"])
      return out.sum()
    return str(jax.make_jaxpr(jax.grad(loss))(variables["params"]))

  ours, plain = grads(True), grads(False)
  assert plain.count("lhs_dilation=(2, 2)") > ours.count("lhs_dilation=(2, 2)")  # phase-decomposed input grads
  assert "cond" in ours and "cond" not in plain  # materialized conv inputs

  def forward(rewrites):
    with xla_cpu.train_step_rewrites(rewrites):
      return str(jax.make_jaxpr(lambda v: model.apply(v, images, mutable=["batch_stats"]))(variables))

  # The first layer (1 channel, stride 1) computes without a convolution; the other four keep theirs.
  assert forward(True).count("conv_general_dilated[") == forward(False).count("conv_general_dilated[") - 1 == 4
  assert ours.count("custom_vjp_call") >= plain.count("custom_vjp_call") + 3  # channel_stats reductions


@pytest.mark.parametrize("channels", [12, 300])  # grouped rows; a matrix-vector product from 256 channels on
def test_channel_sum_matches_numpy_float64(channels):
  x = np.random.default_rng(0).normal(size=(6, 5, 7, channels)).astype(np.float32)
  np.testing.assert_allclose(channel_stats.channel_sum(jnp.asarray(x)), x.astype(np.float64).sum((0, 1, 2)),
                             rtol=1e-5, atol=1e-5)
  g = jax.grad(lambda v: jnp.sum(channel_stats.channel_sum(v) * jnp.arange(float(channels))))(jnp.asarray(x))
  np.testing.assert_array_equal(g, np.broadcast_to(np.arange(float(channels)), x.shape))


def test_eval_mode_batch_norm_and_init_are_untouched():
  # Init and eval-mode batch norm pass through the interceptors unchanged (same variables, no channel_stats
  # reductions); eval-mode convolutions still take the rewritten forms, whose sums run in another order, so
  # the eval output matches Flax's to float32 rounding (bit-equal on some CPUs, 1e-7 apart on others).
  model, images = _StridedNet(), jnp.ones((2, 16, 16, 1))
  plain_variables = model.init(jax.random.PRNGKey(0), images)
  with xla_cpu.train_step_rewrites(True):
    variables = model.init(jax.random.PRNGKey(0), images)
    ours = model.apply(variables, images, train=False)
    eval_jaxpr = str(jax.make_jaxpr(lambda v: model.apply(v, images, train=False))(variables))
    train_jaxpr = str(jax.make_jaxpr(
        lambda v: model.apply(v, images, train=True, mutable=["batch_stats"]))(variables))
  jax.tree.map(np.testing.assert_array_equal, variables, plain_variables)  # same tree structure, same values
  assert "_channel_sum" not in eval_jaxpr and "_channel_sum" in train_jaxpr
  np.testing.assert_allclose(ours, model.apply(variables, images, train=False), rtol=1e-5, atol=1e-6)


def test_jit_train_step_traces_under_the_rewrites(monkeypatch):
  # The loop's and the bench's train steps are traced under the rewrites (here: the batch norm's channel_stats
  # reductions) and compute what the plain jitted step computes.
  monkeypatch.delenv("VISION_JAX_XLA_CPU_TUNING", raising=False)

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = nn.relu(nn.BatchNorm(use_running_average=False)(nn.Conv(4, (3, 3))(x)))
      return nn.Dense(3)(x.mean(axis=(1, 2)))

  model, images = Net(), jax.random.normal(jax.random.PRNGKey(1), (4, 8, 8, 1))
  variables = model.init(jax.random.PRNGKey(0), images)

  def step(params, batch_stats):
    def loss_fn(p):
      out, updates = model.apply({"params": p, "batch_stats": batch_stats}, images, mutable=["batch_stats"])
      return jnp.sum(out ** 2), updates["batch_stats"]
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return grads, stats, loss

  args = (variables["params"], variables["batch_stats"])
  tuned, plain = xla_cpu.jit_train_step(step), jax.jit(step)
  assert "_channel_sum" in str(tuned.trace(*args).jaxpr) and "_channel_sum" not in str(plain.trace(*args).jaxpr)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), tuned(*args), plain(*args))
  forward = xla_cpu.jit_step(lambda v: model.apply(v, images, mutable=["batch_stats"])[0])
  np.testing.assert_allclose(forward(variables), model.apply(variables, images, mutable=["batch_stats"])[0],
                             rtol=1e-5, atol=1e-6)


def _batch_norm_reference(x, scale, bias, epsilon):
  """Batch norm as the paper writes it, for autodiff in float64: (output, mean, variance)."""
  mean = x.mean(axis=(0, 1, 2))
  var = ((x - mean) ** 2).mean(axis=(0, 1, 2))
  return (x - mean) / jnp.sqrt(var + epsilon) * scale + bias, mean, var


def test_batch_norm_gradient_matches_float64_autodiff():
  # The hand-written backward pass of `channel_stats.batch_norm_train` against autodiff of the plain formula in
  # float64, with cotangents on the output and on both returned statistics; a mean far from zero as in ResNets.
  rng = np.random.default_rng(3)
  x = (rng.normal(size=(3, 5, 4, 6)) * 2 + 5).astype(np.float32)
  scale, bias = rng.normal(size=6).astype(np.float32), rng.normal(size=6).astype(np.float32)
  weights = [rng.normal(size=shape).astype(np.float32) for shape in (x.shape, (6,), (6,))]

  def loss(batch_norm, *args):
    y, mean, var = batch_norm(*args)
    return jnp.sum(jnp.sin(y) * weights[0]) + jnp.sum(mean * weights[1]) + jnp.sum(var * weights[2])

  ours = jax.grad(lambda *a: loss(lambda *b: channel_stats.batch_norm_train(*b, 1e-3, jnp.float32), *a),
                  argnums=(0, 1, 2))(x, scale, bias)
  with jax.enable_x64(True):
    reference = jax.grad(lambda *a: loss(lambda *b: _batch_norm_reference(*b, 1e-3), *a), argnums=(0, 1, 2))(
        *(np.asarray(v, np.float64) for v in (x, scale, bias)))
    reference = [np.asarray(r) for r in reference]
  for got, want in zip(ours, reference):
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
  # Narrow activations keep their dtype through the gradient; statistics and parameters stay float32.
  dx = jax.grad(lambda v: jnp.sum(channel_stats.batch_norm_train(v, scale, bias, 1e-3, jnp.bfloat16)[0]
                                  .astype(jnp.float32)))(jnp.asarray(x, jnp.bfloat16))
  assert dx.dtype == jnp.bfloat16
