"""Transfer learning: freezing by path pattern, the backbone learning-rate factor, head replacement, pretrained
initialization errors and frozen batch statistics, checked against plain optax updates and the inputs."""

import os
import re
import sys
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from vision_jax import models
from vision_jax.train_lib import optim, transfer
from vision_jax.configs import common
from vision_jax.errors import CheckpointError, ConfigError


def _params():
  shapes = {"conv1": {"kernel": (5, 5, 1, 6), "bias": (6,)}, "conv2": {"kernel": (5, 5, 6, 16), "bias": (16,)},
            "fc4": {"kernel": (120, 84), "bias": (84,)}, "logits": {"kernel": (84, 5), "bias": (5,)}}
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s), jnp.float32), shapes,
                      is_leaf=lambda x: isinstance(x, tuple))


def _grads(params, step):
  """Gradients drawn per (step, path), so a sub-tree of the parameters gets the same ones."""
  def draw(path, p):
    rng = np.random.default_rng([step, zlib.crc32(jax.tree_util.keystr(path).encode())])
    return jnp.asarray(rng.normal(size=p.shape), jnp.float32)
  return jax.tree_util.tree_map_with_path(draw, params)


HEAD = re.compile("^logits/")


def _cfg(**transfer_values):
  t = common.base_config().transfer
  t.update(transfer_values)
  return t


def _opt(name="adam", **values):
  cfg = common.base_config().optimizer
  cfg.name = name
  cfg.update(values)
  return optim.make_optimizer(cfg, optax.constant_schedule(1e-2))


def _run(tx, params, steps=3):
  state, update = tx.init(params), jax.jit(tx.update)
  updates_seen = []
  for step in range(steps):
    updates, state = update(_grads(params, step), state, params)
    updates_seen.append(updates)
    params = optax.apply_updates(params, updates)
  return params, updates_seen


@pytest.mark.parametrize("option", [{"freeze": "^(conv1|conv2)/"}, {"trainable": "^(fc4|logits)/"}])
def test_frozen_parameters_stay_bit_identical(option):
  params = _params()
  # adamw's decoupled decay and clipping would move frozen weights if they were applied outside the partition.
  tx = transfer.wrap_optimizer(_opt("adamw", weight_decay=0.1, grad_clip_norm=1.0), _cfg(**option), params, HEAD)
  final, _ = _run(tx, params)
  for name in ("conv1", "conv2"):
    for leaf in ("kernel", "bias"):
      np.testing.assert_array_equal(final[name][leaf], params[name][leaf])
  for name in ("fc4", "logits"):
    assert not np.allclose(final[name]["kernel"], params[name]["kernel"])
  state_paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(tx.init(params))]
  assert any("logits" in p for p in state_paths) and not any("conv" in p for p in state_paths)  # no frozen state


def test_clipping_sees_only_trainable_gradients():
  params = _params()
  sgd = dict(name="sgd", momentum=0.0, grad_clip_norm=0.5)  # SGD's update is proportional to the clipped gradient
  tx = transfer.wrap_optimizer(_opt(**sgd), _cfg(freeze="^conv"), params, HEAD)
  _, updates = _run(tx, params)
  trainable = {k: params[k] for k in ("fc4", "logits")}
  _, expected = _run(_opt(**sgd), trainable)  # the same optimizer on the trainable parameters alone
  for got, want in zip(updates, expected):
    for k in trainable:
      np.testing.assert_allclose(got[k]["kernel"], want[k]["kernel"], rtol=1e-6)


def test_backbone_lr_factor_scales_updates_exactly():
  params = _params()
  # A power of two scales exactly, however XLA orders the multiplications by the learning rate and the factor.
  tx = transfer.wrap_optimizer(_opt(), _cfg(backbone_lr_factor=0.25), params, HEAD)
  _, updates = _run(tx, params)
  _, plain = _run(_opt(), params)
  lower_lr = optax.adam(2.5e-3)  # Adam's update is linear in the learning rate
  state, update = lower_lr.init(params), jax.jit(lower_lr.update)
  for step in range(3):
    reference, state = update(_grads(params, step), state, params)
    for name in params:
      for leaf in ("kernel", "bias"):
        got, want = updates[step][name][leaf], plain[step][name][leaf]
        if name == "logits":
          np.testing.assert_array_equal(got, want)
        else:
          np.testing.assert_array_equal(got, want * np.float32(0.25))
          np.testing.assert_allclose(got, reference[name][leaf], rtol=1e-5, atol=1e-9)
    params = optax.apply_updates(params, updates[step])


def test_param_groups_and_pattern_errors():
  params = _params()
  groups = transfer.param_groups(_cfg(freeze="^conv1/"), params, re.compile("fc4|logits"))
  assert groups == {"conv1/kernel": "frozen", "conv1/bias": "frozen", "conv2/kernel": "backbone",
                    "conv2/bias": "backbone", "fc4/kernel": "head", "fc4/bias": "head", "logits/kernel": "head",
                    "logits/bias": "head"}
  with pytest.raises(ConfigError, match=r"transfer.freeze='\^conv9/' matches no parameter"):
    transfer.param_groups(_cfg(freeze="^conv9/"), params)
  with pytest.raises(ConfigError, match="leave no parameter to train"):
    transfer.param_groups(_cfg(freeze="."), params)
  with pytest.raises(ConfigError, match="not a regular expression"):
    transfer.param_groups(_cfg(trainable="(logits"), params)
  plain = optax.sgd(0.1)
  assert transfer.wrap_optimizer(plain, _cfg(), params, HEAD) is plain  # nothing asked: the optimizer is unchanged


def _lenet_variables(num_classes, seed, channels=1):
  """Random arrays in the layout of LeNet-5's variables (the layout is what merging reads)."""
  model = models.get("lenet5_relu", num_classes=num_classes)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, channels)))
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32), shapes)


def test_head_replacement_copies_the_rest_exactly():
  fresh, pretrained = _lenet_variables(5, 0), _lenet_variables(10, 1)  # a new class count
  head = transfer.head_pattern(_cfg(), transfer.last_module(models.get("lenet5_relu"), (28, 28, 1)))
  assert head.pattern == "^logits/"
  merged, report = transfer.merge_pretrained(fresh, pretrained, head, explicit_head=False)
  flat_merged, flat_old = traverse_util.flatten_dict(merged["params"]), traverse_util.flatten_dict(pretrained["params"])
  for path, value in traverse_util.flatten_dict(fresh["params"]).items():
    np.testing.assert_array_equal(flat_merged[path], value if path[0] == "logits" else flat_old[path])
  assert sorted(report["reinitialized"]) == ["params/logits/bias", "params/logits/kernel"]
  assert len(report["loaded"]) == 8 and sorted(report["unused"]) == ["params/logits/bias", "params/logits/kernel"]

  same_count = _lenet_variables(5, 1)  # same shapes: the head is copied unless a head pattern is configured
  _, report = transfer.merge_pretrained(fresh, same_count, head, explicit_head=False)
  assert report["reinitialized"] == []
  merged, report = transfer.merge_pretrained(fresh, same_count, head, explicit_head=True)
  np.testing.assert_array_equal(merged["params"]["logits"]["kernel"], fresh["params"]["logits"]["kernel"])
  np.testing.assert_array_equal(merged["params"]["fc4"]["kernel"], same_count["params"]["fc4"]["kernel"])


def test_default_head_is_the_last_layer_called():
  model = models.get("resnet18_cifar", num_classes=5)  # its parameters sort as ..., "logits", "stem"
  assert transfer.last_module(model, (32, 32, 3)) == "logits"
  assert transfer.head_pattern(_cfg(head="^fc/"), "logits").pattern == "^fc/"


def test_mismatches_outside_the_head_are_one_error():
  fresh, rgb = _lenet_variables(5, 0), _lenet_variables(5, 1, channels=3)
  head = HEAD
  with pytest.raises(CheckpointError, match=r"outside the head \(1: params/conv1/kernel \(5, 5, 3, 6\) vs ours "):
    transfer.merge_pretrained(fresh, rgb, head, explicit_head=False)
  del rgb["params"]["fc4"]
  with pytest.raises(CheckpointError, match="params/fc4/bias absent"):
    transfer.merge_pretrained(fresh, rgb, head, explicit_head=False)
  with pytest.raises(CheckpointError, match="transfer.init_from='/nonexistent/run' is not a directory"):
    transfer.load_pretrained("init_from", "/nonexistent/run", "lenet5_relu", {})
  with pytest.raises(ConfigError, match="set only one of"):
    transfer.pretrained_source(_cfg(init_from="a", init_from_torch="b.pth"))


def test_batch_stats_of_frozen_layers_are_kept():
  params = {"bn1": {"scale": jnp.ones(3), "bias": jnp.zeros(3)}, "bn2": {"scale": jnp.ones(3), "bias": jnp.zeros(3)},
            "dense": {"kernel": jnp.ones((3, 2))}}
  stats = {"bn1": {"mean": jnp.zeros(3), "var": jnp.ones(3)}, "bn2": {"mean": jnp.zeros(3), "var": jnp.ones(3)}}
  paths = transfer.frozen_batch_stats(_cfg(freeze="^bn1/"), params, stats)
  assert sorted(paths) == ["bn1/mean", "bn1/var"]
  assert transfer.frozen_batch_stats(_cfg(freeze="^bn1/", freeze_batch_stats=False), params, stats) == []

  class State:  # the part of TrainState the wrapper uses
    def __init__(self, batch_stats):
      self.batch_stats = batch_stats

    def replace(self, batch_stats):
      return State(batch_stats)

  def step(state, batch, tx=None):
    return State(jax.tree.map(lambda s: s + batch, state.batch_stats)), {"tx": tx}

  other = {"mean": jnp.zeros(2)}  # another network's statistics move freely
  new, metrics = transfer.keep_batch_stats(step, paths)(State({"model": stats, "critic": other}), 2.0, tx="opt")
  assert metrics == {"tx": "opt"}
  np.testing.assert_array_equal(new.batch_stats["model"]["bn1"]["var"], stats["bn1"]["var"])
  np.testing.assert_array_equal(new.batch_stats["model"]["bn2"]["var"], stats["bn2"]["var"] + 2.0)
  np.testing.assert_array_equal(new.batch_stats["critic"]["mean"], other["mean"] + 2.0)


def test_torchvision_weights_into_a_new_class_count(tmp_path):
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fixtures", "interop"))
  from fill import fill_state_dict  # pylint: disable=import-outside-toplevel
  with np.load(os.path.join(os.path.dirname(__file__), "fixtures", "interop", "torchvision_resnet18.npz")) as f:
    keys, shapes = [str(k) for k in f["keys"]], [tuple(int(v) for v in str(s).split(",")) if str(s) else ()
                                                 for s in f["shapes"]]
  np.savez(tmp_path / "resnet18.npz", **fill_state_dict(keys, shapes))  # a 5-class torchvision state dict
  pretrained, _ = transfer.load_pretrained("init_from_torch", str(tmp_path / "resnet18.npz"), "resnet18", {})
  model = models.get("resnet18", num_classes=7)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
  fresh = jax.tree.map(lambda s: np.full(s.shape, 7.0, np.float32), shapes)
  head = transfer.head_pattern(_cfg(), transfer.last_module(model, (64, 64, 3)))
  merged, report = transfer.merge_pretrained(fresh, pretrained, head, explicit_head=False)
  theirs = {"/".join(k): v for c in pretrained for k, v in traverse_util.flatten_dict({c: pretrained[c]}).items()}
  for path in report["loaded"]:
    collection, _, rest = path.partition("/")
    np.testing.assert_array_equal(traverse_util.flatten_dict(merged[collection], sep="/")[rest], theirs[path])
  assert len(report["loaded"]) == len(theirs) - 2 and report["unused"] == sorted(report["reinitialized"])
  assert all(head.search(p.partition("/")[2]) for p in report["reinitialized"])
  for path in report["reinitialized"]:  # the new 7-class head keeps its fresh values
    collection, _, rest = path.partition("/")
    assert (traverse_util.flatten_dict(merged[collection], sep="/")[rest] == 7.0).all()
  assert any(p.startswith("batch_stats/") for p in report["loaded"])
