"""Metric learning: a Siamese embedding network trained with a contrastive or triplet loss (online mining) or a
Koch pair classifier, evaluated on held-out classes by verification, N-way K-shot episodes and gallery recognition.

A config selects it with `task = "embedding"`; `config.model` names any zoo classifier, built with
`num_classes = embedding.embed_dim` so its last linear layer is the embedding head
(`vision_jax.models.embedding`). The `config.embedding` section:

  loss              contrastive | batch_all | batch_hard | semi_hard | soft_margin | prototypical | pair_bce
                    contrastive: Hadsell's loss (y d^2 + (1 - y) max(0, m - d)^2) on the pairs of the `pairs`
                    sampler (batch keys image, image2, same), or on every pair of a P x K batch (`balanced`
                    sampler); the triplet losses mine inside P x K batches (`vision_jax.losses.metric`);
                    prototypical: Snell et al.'s loss on the K episodes of a P x K batch (episode j: the j-th
                    row of every class group is a query, the other K - 1 rows are the support set);
                    nt_xent: SimCLR's label-free instance discrimination on two augmented views of every
                    image (`input.augment` drawn twice; positives: the other view, negatives: every other row);
                    supcon: the same softmax with every same-class row of both views as positives (Khosla et al.);
                    pair_bce: sigmoid cross-entropy of the pair classifier's logit on `pairs` batches.
  temperature       softmax temperature of nt_xent / supcon / the instance term (0.1-0.5)
  instance_weight   > 0 adds weight x NT-Xent of two views to any other loss (both views also feed that loss)
  eval_features     head: evaluate the embedding the loss shapes; backbone: the representation below the
                    embedding head (`EmbeddingNet.features`: the input of the backbone's last linear layer); conv:
                    the input of its first linear layer (flattened conv maps). Lower layers keep what the loss
                    discards and transfer better to unseen classes (SimCLR's observation); conv+backbone joins both
  match, radius,    `EmbeddingEval`'s matching rule (prototype | local: conv maps matched within +-radius cells) and
  refine_steps      transductive soft k-means steps (> 0 adds `_transductive` episode metrics; refines the conv maps
                    under match=local; the hole prior enters the assignments and scores)
  support_views     V > 1: episodes and the gallery score each query against V views of the supports (as they are
                    and V - 1 draws of `input.augment`): the best view's prototype, or every view pooled like extra
                    shots under match=local (`vision_jax.evaluation.support_views`; inductive); 1: off
  feature_power     p != 1: every evaluated feature (embeddings, conv maps, support views) becomes sign(x) |x|^p
                    before it is compared (`vision_jax.evaluation.power_transform`, Tukey's transform; 0.5 on
                    the non-negative conv maps lifts held-out Fashion-MNIST one-shot); 1: off
  holes             > 0: episode and gallery scores lose holes x the L1 distance of the images' hole descriptors
                    (`vision_jax.evaluation.hole_prior`: loops at the top / bottom of a line drawing, found in the
                    stored images as thumbnailed for the pictures, at most THUMB_SIZE pixels a side); 0: off
  hole_descriptor   binary: a hole in each band or not; graded: the fraction of a grid of ink thresholds and
                    minimum hole areas under which it is one (`hole_prior.graded_hole_bands`)
  eval_metric       the evaluation score's distance when it differs from `metric` ("": the training metric),
                    e.g. cosine for the non-negative backbone / conv features
  margin            m of the contrastive and hinge triplet losses
  scale             prototypical logits are -scale * distance (raise it for L2-normalised embeddings)
  metric            euclidean | squared_euclidean | cosine: the training distance and the evaluation score
                    (pair_bce evaluates with the pair head's weighted L1 score)
  embed_dim         embedding size; normalize: L2-normalise embeddings; center: standardise each embedding
                    dimension with the training images' running mean and variance first (`EmbeddingNet.center`)
  heldout_classes   labels (as batches carry them) that training never uses and evaluation is restricted to,
                    e.g. "5,6,7,8,9": training rows of these labels are masked out of every loss (their pixels
                    still pass through the network, so use a backbone without batch norm to keep them unseen);
                    "" trains on every training label and evaluates every eval label. The cleaner route is to
                    separate the classes in the data config: `dataset.classes` for the training split and
                    `dataset.eval_classes` for the evaluation split (`vision_jax.data.subsets`), as
                    configs/siamese_digits.py does; then no held-out image reaches training at all
  class_transforms  0 | 4 | 8: new training classes made by turning each class's images by a multiple of 90
                    degrees (4), or by those turns of the image and of its mirror image (8): on P x K batches each
                    group of K rows (one class) takes one transform drawn per step and the label
                    label * class_transforms + transform (the rotated-class augmentation of few-shot learning,
                    Santoro et al. 2016, Vinyals et al. 2016): more and harder training classes, so that the
                    embedding keeps what tells unseen classes apart (e.g. a 6 from a 9) instead of only what
                    separates the few training classes. Square images and the balanced sampler only.
  glyphs            N > 0 adds N procedurally generated handwriting-like classes x K examples to every P x K batch
                    (`vision_jax.data.synthetic_glyphs`, rendered inside the train step, then augmented and
                    normalised like the real rows; labels from GLYPH_LABEL_OFFSET up, never a real label): many
                    training classes for few-shot transfer, as Omniglot's 964 gave Koch et al.; 0: off
  glyph_pool        0: fresh classes every step (an unbounded family); M > 0: the N classes are drawn from a fixed
                    family of M (their ids are their labels)
  glyph_jitter      per-example control-point jitter as a fraction of the glyph box (0.06: ~1.2 px in 20 px)
  glyph_strokes     at most this many Bezier strokes per glyph class (with train.grad_accum_steps > 1 the glyph rows,
                    appended after the real ones, fill the last micro-batches)
  episodes          evaluation settings WAYSxSHOTS, e.g. "5x1,20x1,5x5"; queries, num_episodes per setting;
  enrol             gallery examples per class; eval_seed seeds every evaluation draw
  best_metric       the eval metric checkpoints keep the best of (max)

With `train.grad_accum_steps = k` the losses mine inside each of the k micro-batches (contrastive pairs need k = 1).

Metrics: training `loss`, `positive_distance`, `negative_distance` (batch means of same-class and
different-class pair distances), for batch_all `active_triplets`, for prototypical `episode_accuracy`; evaluation:
`evaluation.embedding`.
Reports (`embedding_reports`): embedding_pca.png, hardest_pairs.png, verification_roc.png, episodes.png,
episode_confusion.png and, with glyphs, glyphs.png (rows: synthetic classes, columns: examples).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vision_jax.data import synthetic_glyphs
from vision_jax.data.class_transforms import transformed_classes
from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation import embedding as embedding_eval
from vision_jax.evaluation import local_matching, support_views
from vision_jax.evaluation.evaluators import Evaluator, GatherEvaluator
from vision_jax.evaluation.power_transform import power_transform
from vision_jax.losses import metric as metric_losses
from vision_jax.losses.classification import binary_cross_entropy
from vision_jax.models import embedding as embedding_models
from vision_jax.models import overrides
from vision_jax.tasks import base
from vision_jax.tasks.embedding_settings import EVAL_FEATURES, PAIR_LOSSES, check_settings, uses_views
from vision_jax.train_lib import step_memory
from vision_jax.train_lib.state import TrainState

THUMB_SIZE = 32  # longest side of the images kept for the hardest-pairs picture
GLYPH_LABEL_OFFSET = 1 << 20  # synthetic glyph classes take labels from here up


def defaults() -> ml_collections.ConfigDict:
  """The `config.embedding` section with its defaults (module docstring)."""
  return ml_collections.ConfigDict({
      "loss": "batch_hard", "margin": 0.2, "metric": "euclidean", "embed_dim": 64, "normalize": True,
      "center": False, "feature_power": 1.0, "scale": 1.0, "heldout_classes": "", "class_transforms": 0,
      "episodes": "5x1,20x1,5x5",
      "queries": 5, "num_episodes": 1000, "enrol": 1, "eval_seed": 0, "best_metric": "verification_auc",
      "eval_features": "head", "match": "prototype", "radius": 1, "refine_steps": 0, "eval_metric": "",
      "temperature": 0.2, "instance_weight": 0.0, "glyphs": 0,
      "glyph_pool": 0, "glyph_jitter": 0.06, "glyph_strokes": 4, "holes": 0.0, "hole_descriptor": "binary",
      "support_views": 1})


def _label_key(spec: DatasetSpec) -> str:
  if spec.label_key:
    return spec.label_key
  identities = spec.keys_of_kind("identity")
  if not identities:
    raise ConfigError(f"task 'embedding' needs a class label or an identity per example; dataset {spec.name!r} "
                      "has neither: pick a labelled dataset")
  return identities[0]


@base.register("embedding")
class EmbeddingTask(base.Task):
  """Siamese embeddings with contrastive / triplet / pair-classifier training (module docstring).

  Args:
    config: the experiment config (model, input, embedding, train sections are read).
    spec: the training split's `DatasetSpec`.
  """

  throughput_unit = "images"
  curve_metrics = ("loss", "positive_distance", "negative_distance", "verification_auc", "episodes_5way_1shot")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    section = defaults()
    section.update(dict(config.get("embedding") or {}))
    self.settings = section
    groups = int(config.input.batch_size) // max(1, int(config.input.examples_per_class))
    check_settings(section, config.model.name, config.input.sampler, int(config.input.examples_per_class),
                   classes_repeat=0 < spec.num_classes < groups)
    self.label_key = _label_key(spec)
    self.heldout = embedding_eval.parse_classes(section.heldout_classes)
    backbone = overrides.from_config(config.model, num_classes=int(section.embed_dim), **base.compute_dtype(config))
    if section.loss in PAIR_LOSSES:
      self.model: nn.Module = embedding_models.PairClassifier(backbone, bool(section.normalize))
    else:
      self.model = embedding_models.EmbeddingNet(backbone, bool(section.normalize), bool(section.center))
    self.eval_settings = embedding_eval.EmbeddingEval(
        metric="weighted_l1" if section.loss in PAIR_LOSSES else (section.eval_metric or section.metric),
        classes=self.heldout,
        episodes=embedding_eval.parse_episodes(section.episodes), queries=int(section.queries),
        num_episodes=int(section.num_episodes), enrol=int(section.enrol), seed=int(section.eval_seed),
        match=section.match, radius=int(section.radius), refine_steps=int(section.refine_steps),
        holes=float(section.holes), hole_descriptor=str(section.hole_descriptor),
        support_views=int(section.support_views))
    local_matching.check_match(section.match, int(section.radius), section.loss in PAIR_LOSSES)
    self.best_metric = (section.best_metric, "max")
    self.grad_accum_steps = int(config.train.grad_accum_steps)
    step_memory.remat_policy(config.train.remat)
    self.remat = config.train.remat
    self.input_ops = base.InputOps(config.input)
    self.class_transforms = int(section.class_transforms)
    self.examples_per_class = int(config.input.examples_per_class)
    self.glyph_style = synthetic_glyphs.GlyphStyle(jitter=float(section.glyph_jitter),
                                                   max_strokes=int(section.glyph_strokes))

  # --- Networks -------------------------------------------------------------------------------------------------
  def networks(self) -> dict[str, nn.Module]:
    return {"model": self.model}

  def input_shape(self) -> tuple[int, ...]:
    """The model's per-example input shape (traced through the input ops)."""
    return self.input_ops.output_shape(self.spec.image_shape)

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    x = jnp.zeros((1,) + self.input_shape(), jnp.float32)
    return (x, x) if isinstance(self.model, embedding_models.PairClassifier) else (x,)

  def identity(self) -> dict[str, Any]:
    return {"loss": self.settings.loss, "embed_dim": int(self.settings.embed_dim),
            "normalize": bool(self.settings.normalize)}

  def embed(self, variables: Mapping[str, Any], images: jax.Array) -> jax.Array:
    """Evaluation-mode embeddings [N, E] of stored-format images [N, H, W, C]."""
    return self.embed_inputs(variables, self.input_ops(jax.random.PRNGKey(0), images, train=False))

  def embed_inputs(self, variables: Mapping[str, Any], prepared: jax.Array) -> jax.Array:
    """Evaluation-mode embeddings [N, E] of model inputs [N, H, W, C] (`input_ops` applied)."""
    if isinstance(self.model, embedding_models.PairClassifier):
      return self.model.apply(variables, prepared, method=embedding_models.PairClassifier.embed)
    blocks = [self.model.apply(variables, prepared, train=False, layer=EVAL_FEATURES[name],
                               method=embedding_models.EmbeddingNet.features) if name != "head" else
              self.model.apply(variables, prepared, train=False) for name in self.settings.eval_features.split("+")]
    power = float(self.settings.feature_power)
    return embedding_eval.join_feature_blocks([power_transform(block, power) for block in blocks])

  def conv_maps(self, variables: Mapping[str, Any], prepared: jax.Array) -> jax.Array:
    """Evaluation-mode conv maps [N, h, w, C] of model inputs [N, H, W, C] for local matching
    (`EmbeddingNet.features(layer="first_maps")`, power-transformed like every evaluated feature)."""
    maps = self.model.apply(variables, prepared, train=False, layer="first_maps",
                            method=embedding_models.EmbeddingNet.features)
    return power_transform(maps, float(self.settings.feature_power))

  def view_images(self, images: jax.Array, view: int) -> jax.Array:
    """Augmented view `view` >= 1 of stored images [N, H, W, C], preprocessed, not yet normalised: the training
    augmentation with keys made of each image's pixels (`support_views.view_keys`), so it does not depend on the
    batch."""
    def one(key, image):
      ops = self.input_ops
      return ops.augment(jax.random.fold_in(key, 1), ops.preprocess(jax.random.fold_in(key, 0), image[None]))[0]
    return jax.vmap(one)(support_views.view_keys(images, int(self.eval_settings.seed), view), images)

  def view_inputs(self, images: jax.Array, view: int) -> jax.Array:
    """Model inputs [N, ...] of augmented view `view` >= 1 of stored images [N, H, W, C] (`view_images`)."""
    return self.input_ops.normalize(jax.random.PRNGKey(0), self.view_images(images, view))

  # --- Training -------------------------------------------------------------------------------------------------
  def _trained_rows(self, labels: jax.Array) -> jax.Array:
    """[N] bool: rows whose label is not held out."""
    if not self.heldout:
      return jnp.ones(labels.shape, bool)
    return ~jnp.isin(labels, jnp.asarray(self.heldout, labels.dtype))

  def _pair_distance_means(self, distances: jax.Array, same: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
    def mean(selected):
      return jnp.sum(jnp.where(selected, distances, 0.0)) / jnp.maximum(jnp.sum(selected), 1)
    return {"positive_distance": mean(same & mask), "negative_distance": mean(~same & mask)}

  def batch_loss(self, outputs: jax.Array, micro: Mapping[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The configured loss of one (micro-)batch of training-mode outputs and its monitoring metrics.

    Args:
      outputs: embeddings [N, E] ([2N, E] for pairs: the first images, then the second) or pair logits [N].
      micro: labels [N], trained [N] bool and, for pairs, same [N], labels2 [N], trained2 [N]; with two views
        (`uses_views`) the rows are both views and instance_ids [N] names the image each row is a view of.

    Returns:
      (loss [], {metric: []}).
    """
    s, metric = self.settings, self.settings.metric
    if "same" in micro:  # pairs
      same = micro["same"].astype(bool)
      mask = micro["trained"] & micro["trained2"]
      if s.loss == "pair_bce":
        loss = jnp.sum(jnp.where(mask, binary_cross_entropy(outputs, same.astype(jnp.float32)), 0.0))
        return loss / jnp.maximum(jnp.sum(mask), 1), {}
      first, second = jnp.split(outputs, 2)
      loss = metric_losses.contrastive_loss(first, second, same, s.margin, metric, pair_mask=mask)
      return loss, self._pair_distance_means(metric_losses.paired_distances(first, second, metric), same, mask)
    labels, trained = micro["labels"], micro["trained"]
    common = dict(metric=metric, example_mask=trained)
    extra = {}
    if s.loss == "contrastive":
      loss = metric_losses.batch_contrastive_loss(outputs, labels, s.margin, **common)
    elif s.loss == "batch_all":
      loss, extra["active_triplets"] = metric_losses.batch_all_triplet_loss(outputs, labels, s.margin, **common)
    elif s.loss == "prototypical":
      loss, extra["episode_accuracy"] = metric_losses.prototypical_loss(outputs, labels, self.examples_per_class,
                                                                        scale=float(s.scale), **common)
    elif s.loss == "nt_xent":
      loss = metric_losses.nt_xent_loss(outputs, micro["instance_ids"], float(s.temperature), trained)
    elif s.loss == "supcon":
      loss = metric_losses.nt_xent_loss(outputs, labels, float(s.temperature), trained)
    elif s.loss in ("batch_hard", "soft_margin"):
      loss = metric_losses.batch_hard_triplet_loss(outputs, labels, s.margin, soft=s.loss == "soft_margin", **common)
    else:
      loss = metric_losses.semi_hard_triplet_loss(outputs, labels, s.margin, **common)
    if float(s.instance_weight) > 0 and s.loss != "nt_xent":
      extra["instance_loss"] = metric_losses.nt_xent_loss(outputs, micro["instance_ids"], float(s.temperature),
                                                          trained)
      loss = loss + float(s.instance_weight) * extra["instance_loss"]
    positive, negative = metric_losses.pair_masks(labels, trained)
    distances = metric_losses.pairwise_distances(outputs, metric=metric)
    means = self._pair_distance_means(distances, positive, positive | negative)
    return loss, {**means, **extra}

  def glyph_classes(self, rng: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The ids [N] (in the family) and labels [N] of the step's N = embedding.glyphs synthetic classes: glyph_pool
    M > 0 draws N distinct ids below M (labels OFFSET + id), 0 takes N new ids every step (labels OFFSET + 0..N-1)."""
    count, pool = int(self.settings.glyphs), int(self.settings.glyph_pool)
    if pool:
      ids = jax.random.choice(rng, pool, (count,), replace=False)
      return ids, ids.astype(jnp.int32) + GLYPH_LABEL_OFFSET
    ids = step.astype(jnp.uint32) * count + jnp.arange(count, dtype=jnp.uint32)
    return ids, jnp.arange(count, dtype=jnp.int32) + GLYPH_LABEL_OFFSET

  def glyph_rows(self, rng: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The step's synthetic class groups (`glyph_classes`, K examples each, class-major) in the stored range:
    (images [N * K, H, W, C], labels [N * K]). The class family is fixed by the config's seed."""
    ids, labels = self.glyph_classes(jax.random.fold_in(rng, 0), step)
    k = self.examples_per_class
    family = jax.random.PRNGKey(int(self.config.seed) + 7919)
    images = synthetic_glyphs.glyph_batch(family, ids, jax.random.fold_in(rng, 1), k, self.glyph_style)
    height, width = self.spec.image_shape[:2]
    if (height, width) != (self.glyph_style.size,) * 2:
      images = jax.image.resize(images, (images.shape[0], height, width, 1), "bilinear")
    images = jnp.broadcast_to(images, images.shape[:3] + (self.spec.image_shape[2],))
    return images, jnp.repeat(labels, k)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array],
                 txs: Mapping[str, optax.GradientTransformation]) -> tuple[TrainState, base.Metrics]:
    """One optimizer update of "model".

    Args:
      state: the current train state.
      batch: image [N, H, W, C] and the label (P x K batches), plus image2, label2, same for pairs.
      txs: the optimizers ("model").

    Returns:
      (new state, {metric: batch value}).
    """
    step_rng = state.step_rng()
    labels = batch[self.label_key]
    micro = {"labels": labels, "trained": self._trained_rows(labels)}
    first = self.input_ops(jax.random.fold_in(step_rng, 0), batch["image"], train=True)
    if self.class_transforms and "same" not in batch:
      first, micro["labels"] = transformed_classes(jax.random.fold_in(step_rng, 3), first, labels,
                                                   self.class_transforms, self.examples_per_class)
    glyphs = None
    if int(self.settings.glyphs) and "same" not in batch:
      glyphs, glyph_labels = self.glyph_rows(jax.random.fold_in(step_rng, 5), state.step)
      first = jnp.concatenate([first, self.input_ops(jax.random.fold_in(step_rng, 6), glyphs, train=True)])
      micro = {"labels": jnp.concatenate([micro["labels"], glyph_labels.astype(micro["labels"].dtype)]),
               "trained": jnp.concatenate([micro["trained"], jnp.ones(glyph_labels.shape, bool)])}
    if uses_views(self.settings) and "same" not in batch:  # the second view: other augmentation, same class transform
      second = self.input_ops(jax.random.fold_in(step_rng, 4), batch["image"], train=True)
      if self.class_transforms:
        second, _ = transformed_classes(jax.random.fold_in(step_rng, 3), second, labels, self.class_transforms,
                                        self.examples_per_class)
      if glyphs is not None:
        second = jnp.concatenate([second, self.input_ops(jax.random.fold_in(step_rng, 7), glyphs, train=True)])
      first = jnp.concatenate([first, second])
      micro = {key: jnp.concatenate([value, value]) for key, value in micro.items()}
      micro["instance_ids"] = jnp.tile(jnp.arange(second.shape[0]), 2)
      if self.grad_accum_steps != 1:
        raise ConfigError("two views of each image run through one forward pass; use train.grad_accum_steps=1")
    if "same" in batch:
      second = self.input_ops(jax.random.fold_in(step_rng, 2), batch["image2"], train=True)
      micro.update(same=batch["same"], trained2=self._trained_rows(batch["label2"]))
      inputs = (first, second) if self.settings.loss in PAIR_LOSSES else (jnp.concatenate([first, second]),)
    elif self.settings.loss in PAIR_LOSSES:
      raise ConfigError("embedding.loss=pair_bce needs pair batches (image2, same); set input.sampler=pairs")
    else:
      inputs = (first,)
    if len(inputs) == 1 and "same" in batch and self.grad_accum_steps != 1:  # [2N] inputs cannot split with [N] labels
      raise ConfigError("contrastive pairs run both sides through one forward pass; use train.grad_accum_steps=1")
    micro_batch = {"inputs": inputs, **micro}

    def loss_of(outputs, m):  # metrics as [1] rows: micro-batches' values are concatenated, then averaged
      loss, metrics = self.batch_loss(outputs, m)
      return loss, {k: v[None] for k, v in {"loss": loss, **metrics}.items()}

    new_state, metrics = base.supervised_update(state, txs, self.model, micro_batch, loss_of,
                                                jax.random.fold_in(step_rng, 1), self.grad_accum_steps, self.remat)
    return new_state, jax.tree.map(jnp.mean, metrics)

  # --- Evaluation -----------------------------------------------------------------------------------------------
  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-example outputs of one padded eval batch: embedding [N, E], label [N], thumb [N, h, w, C] uint8, mask
    [N]; under match=local maps [N, h, w, C]; with support_views V > 1 view_embedding [N, V - 1, E] (and view_maps);
    for the pair classifier its head's weights repeated per row (pair_weights [N, E])."""
    images = batch["image"]
    variables = state.variables("model")
    embeddings = self.embed(variables, images)
    outputs = {"embedding": embeddings, "label": batch[self.label_key], "mask": batch["mask"],
               "thumb": thumbnails(images)}
    local = self.eval_settings.match == "local"  # check_match has refused the pair classifier
    maps_of = functools.partial(self.conv_maps, variables)
    if local:
      outputs["maps"] = maps_of(self.input_ops(jax.random.PRNGKey(0), images, train=False))
    views = [self.view_inputs(images, v) for v in range(1, self.eval_settings.support_views)]
    if views:  # the augmented support views (`evaluation.support_views`)
      outputs["view_embedding"] = jnp.stack([self.embed_inputs(variables, x) for x in views], 1)
      if local:
        outputs["view_maps"] = jnp.stack([maps_of(x) for x in views], 1)
    if isinstance(self.model, embedding_models.PairClassifier):
      weights = state.params["model"]["pair_head"]["kernel"][:, 0]
      outputs["pair_weights"] = jnp.broadcast_to(weights, embeddings.shape)
    return outputs

  def evaluators(self) -> list[Evaluator]:
    keys = ["embedding", "label", "thumb"] + (["pair_weights"] if self.eval_settings.metric == "weighted_l1" else [])
    keys += ["maps"] if self.eval_settings.match == "local" else []
    if self.eval_settings.support_views > 1:
      keys += ["view_embedding"] + (["view_maps"] if self.eval_settings.match == "local" else [])
    return [GatherEvaluator(keys, functools.partial(embedding_eval.embedding_metrics, settings=self.eval_settings))]

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """The run's pictures (`embedding_reports.write_reports`)."""
    from vision_jax.tasks import embedding_reports  # pylint: disable=import-outside-toplevel
    return embedding_reports.write_reports(self, workdir, metrics, summary)

  def eval_class_names(self) -> tuple[str, ...]:
    """Names of the evaluation split's labels: those of `dataset.eval_classes` in their order when it is set (the
    training spec only names the training classes), else the training spec's."""
    dataset = self.config.dataset
    eval_classes = str(dataset.get("eval_classes", ""))
    if not eval_classes:
      return tuple(self.spec.class_names)
    from vision_jax.data import datasets, subsets  # pylint: disable=import-outside-toplevel
    _, full = datasets.load(dataset.name, dataset.eval_split, dataset.data_dir or None)
    _, num_classes, names = subsets.group_classes(full)
    return tuple(names[c] for c in subsets.parse_classes(eval_classes, num_classes, "dataset.eval_classes"))

  def predict(self, state: TrainState, paths: Sequence[str]) -> list[str]:
    """Each image file's embedding (norm and first values) and, with several files, the nearest other file."""
    from vision_jax.tasks.classification_eval import read_image  # pylint: disable=import-outside-toplevel
    images = np.stack([read_image(p, tuple(self.spec.image_shape)) for p in paths])
    embeddings = np.asarray(jax.device_get(jax.jit(self.embed)(state.variables("model"), images)), np.float64)
    weights = None
    if isinstance(self.model, embedding_models.PairClassifier):
      weights = np.asarray(jax.device_get(state.params["model"]["pair_head"]["kernel"]))[:, 0]
    scores = embedding_eval.score_matrix(embeddings, embeddings, self.eval_settings.metric, weights)
    lines = []
    for i, path in enumerate(paths):
      shown = ", ".join(f"{v:.3f}" for v in embeddings[i, :6])
      line = f"{path}: embedding [{embeddings.shape[1]}] norm {np.linalg.norm(embeddings[i]):.3f} ({shown}, ...)"
      if len(paths) > 1:
        j = int(np.argmax(np.where(np.arange(len(paths)) == i, -np.inf, scores[i])))
        line += f"; nearest other file {paths[j]} (score {scores[i, j]:.3f})"
      lines.append(line)
    return lines


def thumbnails(images: jax.Array, size: int = THUMB_SIZE) -> jax.Array:
  """Stored images [N, H, W, C] as uint8 with the longest side at most `size` (bilinear; smaller ones as they are)."""
  n, height, width, channels = images.shape
  scale = min(1.0, size / max(height, width))
  if scale < 1.0:
    shape = (n, max(1, round(height * scale)), max(1, round(width * scale)), channels)
    images = jax.image.resize(images.astype(jnp.float32), shape, "bilinear")
  return jnp.clip(jnp.round(images.astype(jnp.float32)), 0, 255).astype(jnp.uint8)
