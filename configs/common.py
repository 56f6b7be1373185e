"""Shared config defaults and the `get_config(arg)` argument parser.

Every experiment file in configs/ defines `get_config(arg=None)`; `arg` is the text after ":" in
`--config=configs/x.py:arg`, a comma list of `key=value` typed by the experiment's defaults, plus bare switches
for booleans (e.g. `smoke`, which shrinks a run to seconds). Config text is parsed, never evaluated.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from vision_jax.config_loading import typed_value
from vision_jax.errors import ConfigError



def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses "key=value,switch,..." into a ConfigDict typed by `defaults`.

  Args:
    arg: the config argument string (may be None or "").
    **defaults: every accepted key with its default; a key's type is its default's type.

  Returns:
    A ConfigDict with every key of `defaults`, overridden by `arg`.

  Raises:
    ConfigError: an unknown key, a bare key that is not a boolean, or a value of the wrong type.
  """
  values = dict(defaults)
  for item in (arg or "").split(","):
    item = item.strip()
    if not item:
      continue
    key, sep, text = item.partition("=")
    key = key.strip()
    if key not in defaults:
      raise ConfigError(f"unknown config argument {key!r}; accepted: {', '.join(sorted(defaults))}")
    if not sep:
      if not isinstance(defaults[key], bool):
        raise ConfigError(f"config argument {key!r} needs a value ({key}=...)")
      values[key] = True
    else:
      values[key] = typed_value(key, text.strip(), defaults[key])
  return ml_collections.ConfigDict(values)


def parse_sizes(key: str, text: str, what: str, example: str, count: int | None = None,
                allow_empty: bool = True) -> tuple[int, ...]:
  """Layer sizes written as positive integers joined by "-" (e.g. widths=32-64-128); '' gives () if `allow_empty`.

  Args:
    key: the config argument, named in the error.
    text: its value.
    what: what the sizes are, for the error ("the channels of simple_cnn's two conv pairs").
    example: a valid value, for the error.
    count: the number of sizes required (None: any number).
    allow_empty: whether '' (the caller's default sizes) is accepted.

  Returns:
    The sizes, in order.

  Raises:
    ConfigError: a part that is not a positive integer, not `count` parts, or '' when not `allow_empty`.
  """
  if not text.strip() and allow_empty:
    return ()
  parts = [part.strip() for part in text.split("-")]
  if not all(part.isdigit() and int(part) > 0 for part in parts) or (count is not None and len(parts) != count):
    pattern = "A-B" if count == 2 else "A-B-..."
    raise ConfigError(f"{key}={text!r}; give {what} as {pattern}, e.g. {example}")
  return tuple(int(part) for part in parts)


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by every experiment; experiment files override what they need."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = "classification"

  c.model = ml_collections.ConfigDict()
  c.model.name = "lenet5_relu"
  c.model.kwargs = ml_collections.ConfigDict()  # extra constructor arguments; num_classes comes from data
  # Training-craft switches for any model (vision_jax.models.overrides); "" / -1 keep the model's own.
  c.model.activation = ""  # e.g. prelu, crelu, elu, gelu, leaky_relu(negative_slope=0.2) (layers.activations)
  c.model.kernel_init = ""  # e.g. he_normal, glorot_uniform, orthogonal, truncated_normal(stddev=0.02)
  c.model.bias_init = ""  # e.g. zeros, constant(value=0.1) (layers.initializers)
  c.model.batch_norm = ""  # on | off
  c.model.dropout = -1.0  # >= 0: the rate of every dropout layer


  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = "mnist_embedded"
  c.dataset.train_split = "train"
  c.dataset.eval_split = "test"
  c.dataset.train_split2 = ""  # a second split whose images each batch carries as image2 (CycleGAN's domain B)
  c.dataset.eval_split2 = ""  # its evaluation split (read in order beside eval_split, masked by mask2)
  c.dataset.data_dir = ""  # "" -> $TFDS_DATA_DIR or ~/tensorflow_datasets
  c.dataset.classes = ""  # e.g. "5,6,7,8,9": keep these classes, relabelled 0..4 (vision_jax.data.subsets)
  c.dataset.eval_classes = ""  # evaluation split's own classes (e.g. held out of training), relabelled 0..n-1
  c.dataset.examples_per_class = 0  # > 0: that many training examples per class; 0 -> all
  c.dataset.subset_seed = 0  # which examples examples_per_class draws (independent of `seed`)

  c.input = ml_collections.ConfigDict()
  c.input.batch_size = 128  # global, over all devices and processes
  c.input.eval_batch_size = 512
  c.input.image_size = 0  # > 0: resize + centre-crop every image to this square on the host (varying sizes)
  c.input.preprocess = "to_float"  # ops applied to train and eval images
  c.input.augment = ""  # ops applied to training images only, after preprocess (README "Augmentation")
  c.input.normalize = ""  # ops applied last, to train and eval images
  c.input.max_objects = 32  # boxes/masks per example are padded (or cut, keeping the largest) to this many
  c.input.resize = "center_crop"  # with image_size > 0: center_crop | letterbox (boxes, masks, keypoints move along)
  c.input.min_visible = 0.0  # objects keeping less of their box area inside the image are dropped (host resize)
  c.input.sampler = "uniform"  # uniform | balanced (P classes x K) | pairs | episodes (N-way K-shot)
  c.input.examples_per_class = 4  # balanced: K
  c.input.positive_fraction = 0.5  # pairs: fraction of same-class pairs
  c.input.ways = 5  # episodes: N classes per episode
  c.input.shots = 1  # episodes: K support examples per class
  c.input.queries = 5  # episodes: Q query examples per class
  c.input.episode_classes = ""  # episodes: comma list of the classes to draw from ("" = all)
  c.input.cache_mib = 256  # splits up to this decoded size (uint8) are decoded once and kept in memory; 0: off
  c.input.num_threads = 2
  c.input.prefetch = 4

  # Per-network overrides of `optimizer` for tasks with several networks, e.g. in a GAN config:
  # c.optimizers.critic = ml_collections.ConfigDict({"name": "rmsprop", "learning_rate": 5e-5}).
  c.optimizers = ml_collections.ConfigDict()
  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adam"  # sgd | adam | adamw | rmsprop | adagrad | adadelta
  c.optimizer.learning_rate = 1e-3
  c.optimizer.momentum = 0.9  # sgd, rmsprop
  c.optimizer.nesterov = False  # sgd
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.999
  c.optimizer.eps = 1e-8
  c.optimizer.rho = 0.9  # adadelta; rmsprop decay
  c.optimizer.weight_decay = 0.0  # decoupled for adamw, L2 added to the gradient otherwise
  c.optimizer.grad_clip_norm = 0.0  # 0 -> no clipping

  c.schedule = ml_collections.ConfigDict()
  c.schedule.name = "constant"  # constant | step | exponential | cosine | warmup_cosine
  c.schedule.warmup_steps = 0
  c.schedule.decay_steps = 0  # step/exponential: steps per decay; 0 -> one epoch
  c.schedule.decay_rate = 0.1  # step/exponential: factor per decay period
  c.schedule.end_factor = 0.0  # cosine: final learning rate as a fraction of the peak

  c.loss = ml_collections.ConfigDict()
  c.loss.label_smoothing = 0.0

  c.num_epochs = 10
  c.num_train_steps = -1  # > 0 overrides num_epochs
  c.log_every_steps = 50
  c.eval_every_steps = -1  # -1 -> once per epoch

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = -1  # -1 -> once per epoch
  c.checkpoint.keep = 3
  c.checkpoint.best_metric = "auto"  # an eval metric; "auto": the task's (accuracy for classifiers); "": off
  c.checkpoint.best_mode = "auto"  # max | min | auto (the task's mode for its metric, else min for losses)

  c.callbacks = ml_collections.ConfigDict()
  c.callbacks.early_stopping_patience = 0  # evaluations without improvement; 0 disables
  c.callbacks.early_stopping_metric = "loss"
  c.callbacks.early_stopping_mode = "min"
  c.callbacks.min_delta = 0.0
  c.callbacks.reduce_lr_patience = 0  # evaluations without improvement; 0 disables
  c.callbacks.reduce_lr_metric = "loss"
  c.callbacks.reduce_lr_mode = "min"
  c.callbacks.reduce_lr_factor = 0.5
  c.callbacks.reduce_lr_min_scale = 1e-3

  c.predict = ml_collections.ConfigDict()
  c.predict.top_k = 3

  c.eval = ml_collections.ConfigDict()  # --mode=eval only (training's evaluations use the plain images)
  c.eval.tta = "none"  # none | center | flip | five_crop | ten_crop (vision_jax.evaluation.tta)
  c.eval.tta_pad = 0  # zero padding per side before cropping (e.g. 2 for a pad_crop(pad=2) recipe)
  c.eval.tta_crop = 0  # square crop side, resized back to the image size; 0 -> the image size
  c.eval.misclassified = 36  # most confident mistakes drawn in misclassified.png; 0 -> no image

  c.transfer = ml_collections.ConfigDict()  # vision_jax.train_lib.transfer; patterns are regexes over "a/b/kernel" paths
  c.transfer.init_from = ""  # workdir of one of our runs (its best/, else newest checkpoint)
  c.transfer.init_from_keras = ""  # Keras 3 weights file (vision_jax.interop.keras)
  c.transfer.init_from_torch = ""  # torchvision state dict (vision_jax.interop.torch)
  c.transfer.head = ""  # re-initialized pattern; "" -> the last module, only where its shape differs
  c.transfer.freeze = ""  # parameters matching this get no updates
  c.transfer.trainable = ""  # if set, only parameters matching this are trained
  c.transfer.backbone_lr_factor = 1.0  # update multiplier of trainable parameters outside the head
  c.transfer.freeze_batch_stats = True  # batch-norm statistics of fully frozen layers stay fixed

  c.train = ml_collections.ConfigDict()  # memory and precision of the train step (vision_jax/step_memory.py)
  c.train.compute_dtype = "float32"  # "bfloat16": model computation in bf16; parameters, loss, updates stay fp32
  c.train.grad_accum_steps = 1  # k > 1: the batch is processed as k micro-batches, one update (same as k = 1)
  c.train.remat = "none"  # none | full | dots: jax.checkpoint policy for the forward pass

  c.compile = ml_collections.ConfigDict()
  c.compile.xla_cpu_tuning = True  # CPU only: Eigen convs, conv input barriers, fast BN sums (vision_jax/xla_cpu.py)
  return c


def apply_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a run to seconds: a few steps, small batches, one evaluation at the end."""
  config.num_train_steps = 20
  config.input.batch_size = min(config.input.batch_size, 32)
  config.log_every_steps = 5
  config.eval_every_steps = 20
  config.checkpoint.every_steps = 10
  return config
