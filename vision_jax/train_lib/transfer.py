"""Transfer learning: start from pretrained weights, freeze parameters by path pattern, scale backbone updates.

The three regimes of the lectures, chosen by the `transfer` config section:

  * train a new head on frozen features:  `trainable = "^logits/"` (everything else frozen);
  * freeze early layers, train the rest:  `freeze = "^(conv1|conv2)/"`;
  * fine-tune everything, gently:         `backbone_lr_factor = 0.1` (the head keeps the full learning rate).

Patterns are Python regular expressions searched (`re.search`) in "/"-joined parameter paths such as
"conv1/kernel" or "layer1_0/bn1/scale"; anchor them ("^conv1/") to avoid matching deeper modules of the same
name. A pattern that matches no parameter is a config error (usually a typo).

Pretrained weights come from one of `init_from` (the workdir of one of our runs: its best/ checkpoint, else the
newest periodic one), `init_from_keras` (a Keras 3 weights file) or `init_from_torch` (a torchvision state dict),
the latter two through `vision_jax.interop`. Every parameter and batch-norm statistic whose path and shape match
is copied; the head is re-initialized: the parameters matching `head`, or, when `head` is empty, those of the
module the model calls last, where their shape differs (a new class count). Any other missing or mis-shaped
entry is one `CheckpointError` listing them. The step counter and optimizer state start fresh.

Batch norm in frozen layers: with `freeze_batch_stats` (the default) the running statistics of a batch-norm
layer whose parameters are all frozen stay at their pretrained values, so the features the frozen layers compute
at evaluation time are exactly the pretrained ones. During training such layers still normalize with the batch's
statistics (our models take one `train` flag for every layer; Keras instead runs frozen BN in inference mode).
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import traverse_util

from vision_jax.train_lib.checkpoint import load_state_arrays
from vision_jax.errors import CheckpointError, ConfigError
from vision_jax.interop.common import leaf_layers
from vision_jax.train_lib.state import TrainState

FROZEN, BACKBONE, HEAD = "frozen", "backbone", "head"
NETWORK = "model"  # the network transfer learning applies to


def flat(tree: Any) -> dict[str, Any]:
  """Nested dict -> {"a/b/c": leaf}."""
  return traverse_util.flatten_dict(dict(tree), sep="/") if tree else {}


def _compile(cfg: ml_collections.ConfigDict, key: str) -> re.Pattern | None:
  text = cfg[key]
  if not text:
    return None
  try:
    return re.compile(text)
  except re.error as e:
    raise ConfigError(f"transfer.{key}={text!r} is not a regular expression ({e}); use e.g. '^conv1/|^conv2/'") from None


def last_module(model: nn.Module, inputs: tuple[jax.Array, ...] | tuple[int, ...]) -> str:
  """The top-level module of the last layer `model` calls (its classifier, usually) on `inputs` (example arrays,
  or one input's shape without the batch axis).

  Call order, not parameter order: parameter dicts come back from JAX transformations with sorted keys.
  """
  layers, _ = leaf_layers(model, inputs)
  return layers[-1].path[0]


def head_pattern(cfg: ml_collections.ConfigDict, last: str) -> re.Pattern:
  """`transfer.head`, or the module named `last` (see `last_module`) when it is empty."""
  return _compile(cfg, "head") or re.compile("^" + re.escape(last) + "/")


def param_groups(cfg: ml_collections.ConfigDict, params: Any, head: re.Pattern | None = None) -> dict[str, str]:
  """Labels every parameter path FROZEN, BACKBONE or HEAD from the `transfer` config.

  A parameter is frozen if it matches `freeze`, or if `trainable` is set and it does not match it.
  Trainable parameters are HEAD if they match `head` (see `head_pattern`), else BACKBONE.

  Raises:
    ConfigError: a pattern matches no parameter, or every parameter is frozen.
  """
  paths = list(flat(params))
  freeze, trainable = _compile(cfg, "freeze"), _compile(cfg, "trainable")
  for key, pattern in (("freeze", freeze), ("trainable", trainable), ("head", head)):
    if pattern is not None and not any(pattern.search(p) for p in paths):
      raise ConfigError(f"transfer.{key}={pattern.pattern!r} matches no parameter; paths look like "
                        f"{', '.join(paths[:4])} ...")
  labels = {}
  for p in paths:
    if (freeze is not None and freeze.search(p)) or (trainable is not None and not trainable.search(p)):
      labels[p] = FROZEN
    else:
      labels[p] = HEAD if head is not None and head.search(p) else BACKBONE
  if all(v == FROZEN for v in labels.values()):
    raise ConfigError("transfer.freeze / transfer.trainable leave no parameter to train; loosen them")
  return labels


def _scale_by_path(factors: dict[str, float]) -> optax.GradientTransformation:
  """Multiplies each update by the factor of its "/"-joined path (1 where absent)."""

  def update(updates, state, params=None):
    del params
    scaled = jax.tree_util.tree_map_with_path(
        lambda path, u: u * jnp.asarray(factors.get(_keystr(path), 1.0), u.dtype), updates)
    return scaled, state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _keystr(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def wrap_optimizer(tx: optax.GradientTransformation, cfg: ml_collections.ConfigDict, params: Any,
                   head: re.Pattern) -> optax.GradientTransformation:
  """Freezes and rescales parameter groups of `tx` as the `transfer` config asks.

  Frozen parameters get exactly zero updates and no optimizer state (`optax.partition`, formerly
  `multi_transform`, with `optax.set_to_zero`). The rest go through `tx` as one group, so global-norm clipping
  sees only the trainable gradients; BACKBONE updates are then multiplied by `backbone_lr_factor` (for Adam-like
  and SGD optimizers, the same as a learning rate lower by that factor).

  Args:
    tx: the optimizer from `optim.make_optimizer`.
    cfg: the `transfer` config section.
    params: the parameters, or their shapes (`jax.eval_shape`).
    head: the head's paths (`head_pattern`), which keep the full learning rate.

  Returns:
    `tx` itself when nothing is frozen or rescaled, else the wrapped optimizer.
  """
  if not (cfg.freeze or cfg.trainable or cfg.backbone_lr_factor != 1.0):
    return tx
  if cfg.backbone_lr_factor < 0:
    raise ConfigError(f"transfer.backbone_lr_factor={cfg.backbone_lr_factor} must be >= 0")
  groups = param_groups(cfg, params, head)
  if cfg.backbone_lr_factor != 1.0:
    factors = {p: cfg.backbone_lr_factor for p, g in groups.items() if g == BACKBONE}
    tx = optax.chain(tx, _scale_by_path(factors))
  labels = traverse_util.unflatten_dict({p: FROZEN if g == FROZEN else "trainable" for p, g in groups.items()},
                                        sep="/")
  transforms = {"trainable": tx}
  if FROZEN in groups.values():
    transforms[FROZEN] = optax.set_to_zero()
  return optax.partition(transforms, labels)


def frozen_batch_stats(cfg: ml_collections.ConfigDict, params: Any, batch_stats: Any) -> list[str]:
  """Paths of the batch statistics that stay fixed: those of modules whose parameters are all frozen.

  Empty when `freeze_batch_stats` is off or nothing is frozen.
  """
  if not cfg.freeze_batch_stats or not (cfg.freeze or cfg.trainable) or not batch_stats:
    return []
  groups = param_groups(cfg, params)
  out = []
  for path in flat(batch_stats):
    module = path.rpartition("/")[0] + "/"
    owned = [g for p, g in groups.items() if p.startswith(module) and "/" not in p[len(module):]]
    if owned and all(g == FROZEN for g in owned):
      out.append(path)
  return out


def keep_batch_stats(train_step: Callable, paths: list[str]) -> Callable:
  """Wraps a task's `train_step(state, batch, ...)` so the batch statistics at `paths` (of the network "model")
  keep their old values."""
  if not paths:
    return train_step
  fixed = set(paths)

  @functools.wraps(train_step)
  def step(state: TrainState, batch, *args, **kwargs):
    new_state, metrics = train_step(state, batch, *args, **kwargs)
    old, new = flat(state.batch_stats[NETWORK]), flat(new_state.batch_stats[NETWORK])
    merged = traverse_util.unflatten_dict({p: old[p] if p in fixed else v for p, v in new.items()}, sep="/")
    return new_state.replace(batch_stats={**new_state.batch_stats, NETWORK: merged}), metrics

  return step


def pretrained_source(cfg: ml_collections.ConfigDict) -> tuple[str, str] | None:
  """("init_from" | "init_from_keras" | "init_from_torch", path), or None when no pretrained weights are asked."""
  given = [(k, cfg[k]) for k in ("init_from", "init_from_keras", "init_from_torch") if cfg[k]]
  if len(given) > 1:
    raise ConfigError(f"set only one of transfer.init_from, init_from_keras, init_from_torch (got "
                      f"{', '.join(k for k, _ in given)})")
  return given[0] if given else None


def load_pretrained(kind: str, path: str, model_name: str, model_kwargs: dict[str, Any]) -> tuple[dict, str]:
  """Reads pretrained variables as {"params": ..., "batch_stats": ...} of NumPy arrays.

  Args:
    kind: "init_from" (our run directory), "init_from_keras" or "init_from_torch".
    path: the run directory or weights file.
    model_name: our registry name (the Keras/torch importers pair layers for it).
    model_kwargs: its constructor arguments other than num_classes (which is read from the file).

  Returns:
    (variables, description of where they came from).
  """
  if kind == "init_from":
    if not os.path.isdir(path):
      raise CheckpointError(f"transfer.init_from={path!r} is not a directory; point it at the --workdir of a "
                            "finished run (e.g. runs/transfer_pretrain)")
    best = os.path.join(path, "best")
    which = "best" if os.path.isdir(best) and any(d.isdigit() for d in os.listdir(best)) else "checkpoints"
    state = load_state_arrays(path, which=which)
    if NETWORK not in (state.get("params") or {}):
      raise CheckpointError(f"transfer.init_from={path!r} holds no network {NETWORK!r}; point it at a run of a task "
                            "whose network is called model (a classifier)")
    return ({"params": state["params"][NETWORK], "batch_stats": (state.get("batch_stats") or {}).get(NETWORK) or {}},
            f"{path}/{which} (step {int(state['step'])})")
  from vision_jax.interop import keras, torch  # pylint: disable=import-outside-toplevel
  importer = keras if kind == "init_from_keras" else torch
  variables = importer.load(model_name, path, **model_kwargs)
  return jax.tree.map(np.asarray, variables), path


def merge_pretrained(fresh: dict[str, Any], pretrained: dict[str, Any], head: re.Pattern,
                     explicit_head: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
  """Copies pretrained variables into freshly initialized ones where path and shape match.

  Args:
    fresh: {"params": ..., "batch_stats"?: ...} from `model.init` (these stay for the head).
    pretrained: variables of the same layout from a checkpoint.
    head: pattern of the head's paths (collection excluded, e.g. "logits/kernel").
    explicit_head: True: the head is always re-initialized; False: only where its shape differs or it is absent.

  Returns:
    (variables, report) with report lists "loaded", "reinitialized" and "unused" (pretrained paths not used).

  Raises:
    CheckpointError: entries outside the head that are missing or mis-shaped in `pretrained`.
  """
  theirs = {f"{c}/{p}": v for c, tree in pretrained.items() for p, v in flat(tree).items()}
  report: dict[str, list[str]] = {"loaded": [], "reinitialized": [], "unused": []}
  problems, out = [], {}
  for collection, tree in fresh.items():
    merged = {}
    for path, value in flat(tree).items():
      key, found = f"{collection}/{path}", theirs.get(f"{collection}/{path}")
      is_head = bool(head.search(path))
      fits = found is not None and tuple(np.shape(found)) == tuple(np.shape(value))
      if fits and not (is_head and explicit_head):
        merged[path] = jnp.asarray(found, dtype=value.dtype)
        report["loaded"].append(key)
      elif is_head:
        merged[path] = value
        report["reinitialized"].append(key)
      else:
        problems.append(f"{key} {'absent' if found is None else f'{np.shape(found)} vs ours {np.shape(value)}'}")
    out[collection] = traverse_util.unflatten_dict(merged, sep="/") if merged else {}
  if explicit_head and not report["reinitialized"]:
    raise ConfigError(f"transfer.head={head.pattern!r} matches no parameter; paths look like "
                      f"{', '.join(list(flat(fresh['params']))[:4])} ...")
  if problems:
    raise CheckpointError(
        f"pretrained weights do not fit outside the head ({len(problems)}: {'; '.join(problems[:6])}"
        f"{' ...' if len(problems) > 6 else ''}); check model.name, or widen transfer.head to re-initialize them")
  report["unused"] = sorted(set(theirs) - set(report["loaded"]))
  return out, report


def pretrained_init_state(cfg: ml_collections.ConfigDict, model_name: str, model_kwargs: dict[str, Any],
                          task: Any, head: re.Pattern, txs: dict[str, optax.GradientTransformation],
                          init_rng: jax.Array, train_rng: jax.Array, sharding: Any) -> Callable[[], TrainState]:
  """() -> the initial train state with pretrained weights merged into network "model" (read when called, not
  when resuming).

  Args:
    cfg: the `transfer` config section (a pretrained source must be set).
    model_name, model_kwargs: the model being trained (for the Keras/torch importers).
    task: the task (its `init_variables` and `init_extras` give the fresh state).
    head: the head's paths (`head_pattern`).
    txs: every network's optimizer (their states start fresh).
    init_rng, train_rng: keys of the fresh initialization and of the training steps.
    sharding: where the state lives (replicated over the mesh).
  """
  kind, path = pretrained_source(cfg)

  def init() -> TrainState:
    fresh = jax.device_get(jax.jit(task.init_variables)(init_rng))
    pretrained, origin = load_pretrained(kind, path, model_name, model_kwargs)
    merged, report = merge_pretrained(fresh[NETWORK], pretrained, head, bool(cfg.head))
    if jax.process_index() == 0:
      print(f"transfer: loaded {len(report['loaded'])} arrays from {origin}; re-initialized "
            f"{', '.join(report['reinitialized']) or 'nothing'}; {len(report['unused'])} pretrained arrays unused"
            f"{' (' + ', '.join(report['unused'][:4]) + ')' if report['unused'] else ''}", flush=True)
    variables = {**fresh, NETWORK: merged}
    create = jax.jit(lambda v: TrainState.create(v, txs, train_rng, task.init_extras(jax.random.fold_in(init_rng, 1))),
                     out_shardings=sharding)
    return create(variables)

  return init


def prepare(config: ml_collections.ConfigDict, task: Any, txs: dict[str, optax.GradientTransformation],
            init_rng: jax.Array, train_rng: jax.Array, sharding: Any) -> tuple[optax.GradientTransformation, Callable | None]:
  """Applies the `transfer` config section to network "model" of a run being set up (called by `setup`).

  Wraps its optimizer (`wrap_optimizer`), wraps `task.train_step` to keep frozen batch statistics
  (`keep_batch_stats`) and, with a pretrained source, builds the initializer that merges its weights
  (`pretrained_init_state`).

  Returns:
    (the model's optimizer, initializer () -> TrainState, or None for a fresh initialization).
  """
  cfg = config.transfer
  tx = txs[NETWORK]
  if not (cfg.freeze or cfg.trainable or cfg.backbone_lr_factor != 1.0 or pretrained_source(cfg)):
    return tx, None
  shapes = jax.eval_shape(lambda rng: task.init_network(NETWORK, rng), init_rng)
  head = head_pattern(cfg, last_module(task.networks()[NETWORK], task.example_inputs(NETWORK)))
  tx = wrap_optimizer(tx, cfg, shapes["params"], head)
  task.train_step = keep_batch_stats(task.train_step,
                                     frozen_batch_stats(cfg, shapes["params"], shapes.get("batch_stats", {})))
  if pretrained_source(cfg) is None:
    return tx, None
  return tx, pretrained_init_state(cfg, config.model.name, config.model.kwargs.to_dict(), task, head,
                                   {**txs, NETWORK: tx}, init_rng, train_rng, sharding)
