"""The `gan` task: a generator and a discriminator (a "critic" for the Wasserstein loss) trained by the adversarial
game of `config.gan.loss`, evaluated by FID/KID/precision-recall on a feature network trained in this project.

Covers DCGAN (Radford et al.), the class-conditional GAN (Mirza & Osindero; concatenation or projection
discriminator), WGAN (Arjovsky et al.: weight clipping, RMSprop, n_critic critic updates per generator update with
100 for the first 25 generator iterations and every 500th) and WGAN-GP (Gulrajani et al.: gradient penalty on
random interpolates, no batch norm in the critic).

Every loop step updates the discriminator once; the generator is updated in the same step when the discriminator
has had its `n_critic` updates since the last generator update (counters in `state.extras`, so a resumed run
continues the schedule exactly). With n_critic = 1 every step updates both (DCGAN). An exponential moving average
of the generator's parameters is kept in `state.extras` (zero-initialised and debiased like Adam's moments).

Config section `gan` (see configs/gan_dcgan.py): latent_dim, loss (`losses.adversarial.LOSS_KINDS`), n_critic,
wgan_schedule, clip (0: none), gradient_penalty (lambda; 0: none), ema_decay (0: none), conditional ("" | "concat" |
"projection"), class_maps (conditional generator: also one-hot class maps at every resolution), generator_width,
discriminator_width, discriminator_norm ("batch" | "layer" | "none"), feature_net
(`evaluation.feature_nets.DATASETS` or "pixels"), eval_generator ("ema" | "live"), kid_subsets, kid_subset_size, pr_k,
num_samples, mode_seeking (weight of MSGAN's term, `adversarial.mode_seeking_loss`, added to the generator loss; the
generator batch's second half then repeats the first half's classes with new latents; 0: off).
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.evaluation import generative
from vision_jax.evaluation.evaluators import Evaluator, GatherEvaluator, SumEvaluator
from vision_jax.losses import adversarial
from vision_jax.models import generative as gan_models
from vision_jax.tasks import base, gan_eval
from vision_jax.train_lib.state import TrainState

WGAN_WARMUP_GENERATOR_ITERATIONS = 25  # Arjovsky et al.'s code: 100 critic steps while gen_iterations < 25 ...
WGAN_LONG_CRITIC_EVERY = 500  # ... and whenever gen_iterations % 500 == 0
WGAN_LONG_CRITIC_STEPS = 100


@base.register("gan")
class GanTask(base.Task):
  """Generator + discriminator/critic; see the module docstring for the config."""

  best_metric = ("fid", "min")
  builds_own_networks = True
  curve_metrics = ("discriminator_loss", "generator_loss", "real_score", "fake_score", "gradient_penalty", "fid",
                   "kid", "precision", "recall", "conditional_accuracy")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    cfg = config.gan
    self.latent_dim = int(cfg.latent_dim)
    self.loss = str(cfg.loss)
    if self.loss not in adversarial.LOSS_KINDS:
      raise ConfigError(f"unknown gan.loss {self.loss!r}; use one of {', '.join(adversarial.LOSS_KINDS)}")
    self.n_critic = int(cfg.n_critic)
    self.wgan_schedule = bool(cfg.wgan_schedule)
    self.clip = float(cfg.clip)
    self.penalty = float(cfg.gradient_penalty)
    self.ema_decay = float(cfg.ema_decay)
    self.conditional = str(cfg.conditional)
    self.eval_ema = str(cfg.eval_generator) == "ema" and self.ema_decay > 0
    self.kid_subsets, self.kid_subset_size, self.pr_k = int(cfg.kid_subsets), int(cfg.kid_subset_size), int(cfg.pr_k)
    self.num_samples = int(cfg.num_samples)
    self.mode_seeking = float(cfg.get("mode_seeking", 0.0))
    if self.mode_seeking > 0 and config.input.batch_size % 2:
      raise ConfigError(f"gan.mode_seeking pairs the two halves of each batch; input.batch_size="
                        f"{config.input.batch_size} is odd: use an even one")
    norm = str(cfg.discriminator_norm)
    if self.n_critic < 1:
      raise ConfigError(f"gan.n_critic is {self.n_critic}; it must be >= 1 (discriminator updates per generator one)")
    if self.penalty > 0 and norm == "batch":
      raise ConfigError("gan.gradient_penalty needs a critic without batch norm (its per-example gradients mix "
                        "the batch): set gan.discriminator_norm to 'none' or 'layer'")
    if self.conditional not in ("", "concat", "projection"):
      raise ConfigError(f"unknown gan.conditional {self.conditional!r}; use '', 'concat' or 'projection'")
    if self.conditional and not spec.has_labels:
      raise ConfigError(f"gan.conditional needs class labels; dataset {spec.name!r} has none: set gan.conditional=''")
    self.num_classes = spec.num_classes if self.conditional else 0
    self.input_ops = base.InputOps(config.input)
    stored = tuple(spec.image_shape)
    if config.input.image_size > 0:  # resized on the host (the loop's spec already says so; a raw spec may not)
      stored = (config.input.image_size, config.input.image_size) + stored[2:]
    self.image_shape = tuple(self.input_ops.output_shape(stored))
    if len(self.image_shape) != 3 or self.image_shape[0] != self.image_shape[1]:
      raise ConfigError(f"the gan task needs square images [H, H, C]; got {self.image_shape}: set input.image_size")
    self.disc_name = "critic" if self.loss == "wasserstein" else "discriminator"
    g_width, d_width = int(cfg.generator_width), int(cfg.discriminator_width)
    if self.conditional:
      self.generator = gan_models.ConditionalGenerator(self.image_shape, self.num_classes, g_width,
                                                       class_maps=bool(cfg.get("class_maps", False)))
      disc = gan_models.ProjectionDiscriminator if self.conditional == "projection" else gan_models.ConcatDiscriminator
      self.discriminator = disc(self.num_classes, d_width, norm)
    else:
      self.generator = gan_models.Generator(self.image_shape, g_width)
      self.discriminator = gan_models.Discriminator(d_width, norm)
    self.features = gan_eval.feature_extractor(str(cfg.feature_net), self.image_shape)
    self._sample_fn = None

  # --- Networks and state -----------------------------------------------------------------------------------------
  def networks(self) -> dict[str, nn.Module]:
    return {"generator": self.generator, self.disc_name: self.discriminator}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    labels = (jnp.zeros((1,), jnp.int32),) if self.conditional else ()
    if name == "generator":
      return (jnp.zeros((1, self.latent_dim), jnp.float32),) + labels
    return (jnp.zeros((1,) + self.image_shape, jnp.float32),) + labels

  def init_extras(self, rng: jax.Array) -> dict[str, Any]:
    """Schedule counters and the (zero-initialised, debiased) generator EMA."""
    del rng
    extras = {"generator_iterations": jnp.zeros((), jnp.int32), "critic_iterations": jnp.zeros((), jnp.int32)}
    if self.ema_decay > 0:
      params = jax.eval_shape(lambda: self.init_network("generator", jax.random.PRNGKey(0)))["params"]
      extras["ema_generator"] = jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype), params)
    return extras

  def identity(self) -> dict[str, Any]:
    return {"latent_dim": self.latent_dim, "loss": self.loss, "conditional": self.conditional}

  # --- Network calls -------------------------------------------------------------------------------------------
  def generate(self, params: Any, batch_stats: Any, z: jax.Array, labels: jax.Array | None,
               train: bool) -> tuple[jax.Array, Any]:
    """(images [N, H, W, C] in [-1, 1], updated generator batch stats (the given ones when not training))."""
    variables = {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}
    inputs = (z, labels) if self.conditional else (z,)
    if not train or not batch_stats:
      return self.generator.apply(variables, *inputs, train=train), batch_stats
    images, updates = self.generator.apply(variables, *inputs, train=True, mutable=["batch_stats"])
    return images, updates["batch_stats"]

  def score(self, params: Any, batch_stats: Any, images: jax.Array, labels: jax.Array | None) -> tuple[jax.Array, Any]:
    """Training-mode discriminator scores [N] and the batch stats after them."""
    variables = {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}
    inputs = (images, labels) if self.conditional else (images,)
    if not batch_stats:
      return self.discriminator.apply(variables, *inputs, train=True), batch_stats
    scores, updates = self.discriminator.apply(variables, *inputs, train=True, mutable=["batch_stats"])
    return scores, updates["batch_stats"]

  def critic_steps_needed(self, generator_iterations: jax.Array) -> jax.Array:
    """Discriminator updates before the next generator update (the WGAN schedule when `gan.wgan_schedule`)."""
    if not self.wgan_schedule:
      return jnp.int32(self.n_critic)
    long = ((generator_iterations < WGAN_WARMUP_GENERATOR_ITERATIONS)
            | (generator_iterations % WGAN_LONG_CRITIC_EVERY == 0))
    return jnp.where(long, WGAN_LONG_CRITIC_STEPS, self.n_critic).astype(jnp.int32)

  # --- Training ------------------------------------------------------------------------------------------------
  def discriminator_update(self, state: TrainState, real: jax.Array, labels: jax.Array | None, z: jax.Array,
                           fake_labels: jax.Array | None, rng: jax.Array,
                           tx: optax.GradientTransformation) -> tuple[TrainState, base.Metrics]:
    """One discriminator/critic update on a real batch and generated images (the generator is left as it is)."""
    name = self.disc_name
    fake, _ = self.generate(state.params["generator"], state.batch_stats["generator"], z, fake_labels, train=True)
    fake = jax.lax.stop_gradient(fake)

    def loss_fn(params):
      real_scores, stats = self.score(params, state.batch_stats[name], real, labels)
      fake_scores, stats = self.score(params, stats, fake, fake_labels)
      loss = adversarial.discriminator_loss(self.loss, real_scores, fake_scores)
      penalty = jnp.zeros((), jnp.float32)
      if self.penalty > 0:
        def critic_fn(x):
          return self.score(params, stats, x, labels)[0]
        penalty = adversarial.gradient_penalty(critic_fn, real, fake, rng, self.penalty)
      return loss + penalty, (stats, loss, penalty, real_scores, fake_scores)

    grads, (stats, loss, penalty, real_scores, fake_scores) = jax.grad(loss_fn, has_aux=True)(state.params[name])
    state = state.apply_gradients(name, grads, tx, batch_stats=stats if stats else None)
    if self.clip > 0:
      state = state.replace(params={**state.params, name: adversarial.clip_weights(state.params[name], self.clip)})
    return state, {"discriminator_loss": loss, "gradient_penalty": penalty, "real_score": jnp.mean(real_scores),
                   "fake_score": jnp.mean(fake_scores)}

  def generator_update(self, state: TrainState, z: jax.Array, fake_labels: jax.Array | None,
                       tx: optax.GradientTransformation) -> tuple[TrainState, jax.Array]:
    """One generator update (the discriminator's parameters and statistics are left as they are)."""
    name = self.disc_name

    def loss_fn(params):
      fake, stats = self.generate(params, state.batch_stats["generator"], z, fake_labels, train=True)
      scores, _ = self.score(state.params[name], state.batch_stats[name], fake, fake_labels)
      loss = adversarial.generator_loss(self.loss, scores)
      if self.mode_seeking > 0:
        loss = loss + self.mode_seeking * adversarial.mode_seeking_loss(fake, z)
      return loss, stats

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["generator"])
    state = state.apply_gradients("generator", grads, tx, batch_stats=stats if stats else None)
    if self.ema_decay > 0:
      ema = jax.tree.map(lambda e, p: self.ema_decay * e + (1 - self.ema_decay) * p, state.extras["ema_generator"],
                         state.params["generator"])
      state = state.replace(extras={**state.extras, "ema_generator": ema})
    return state, loss

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs) -> tuple[TrainState, base.Metrics]:
    """One discriminator update, then a generator update when the schedule says so (`jax.lax.cond`).

    Returns:
      (state, metrics): discriminator_loss, gradient_penalty, real_score, fake_score (before the update),
      generator_loss (0 on steps without a generator update), generator_step (1 or 0).
    """
    rng = state.step_rng()
    real = self.input_ops(jax.random.fold_in(rng, 0), batch["image"], train=True)
    n = real.shape[0]
    labels = batch["label"].astype(jnp.int32) if self.conditional else None

    def latents(index, pairs=False):
      z = jax.random.normal(jax.random.fold_in(rng, index), (n, self.latent_dim), jnp.float32)
      if not self.conditional:
        return z, None
      if not pairs:
        return z, jax.random.randint(jax.random.fold_in(rng, index + 10), (n,), 0, self.num_classes)
      half = jax.random.randint(jax.random.fold_in(rng, index + 10), (n // 2,), 0, self.num_classes)
      return z, jnp.concatenate([half, half])  # mode seeking: pairs (i, i + n/2) share a class

    state, metrics = self.discriminator_update(state, real, labels, *latents(1), jax.random.fold_in(rng, 2),
                                               txs[self.disc_name])
    critic_iterations = state.extras["critic_iterations"] + 1
    generator_iterations = state.extras["generator_iterations"]
    due = critic_iterations >= self.critic_steps_needed(generator_iterations)

    def with_generator(state):
      state, loss = self.generator_update(state, *latents(3, self.mode_seeking > 0), txs["generator"])
      counters = {"generator_iterations": generator_iterations + 1, "critic_iterations": jnp.zeros((), jnp.int32)}
      return state.replace(extras={**state.extras, **counters}), loss

    def without_generator(state):
      return state.replace(extras={**state.extras, "critic_iterations": critic_iterations}), jnp.zeros((), jnp.float32)

    state, generator_loss = jax.lax.cond(due, with_generator, without_generator, state)
    return state, {**metrics, "generator_loss": generator_loss, "generator_step": due.astype(jnp.float32)}

  # --- Evaluation ----------------------------------------------------------------------------------------------
  def eval_generator_params(self, state: TrainState) -> Any:
    """The generator parameters evaluated and sampled: the debiased EMA (`gan.eval_generator = "ema"`) once the
    generator has been updated, else the live ones."""
    if not self.eval_ema:
      return state.params["generator"]
    count = state.extras["generator_iterations"]
    correction = 1.0 - jnp.power(jnp.float32(self.ema_decay), count.astype(jnp.float32))
    live = state.params["generator"]
    return jax.tree.map(lambda e, p: jnp.where(count > 0, e / jnp.maximum(correction, 1e-12), p),
                        state.extras["ema_generator"], live)

  def sample(self, state: TrainState, z: jax.Array, labels: jax.Array | None) -> jax.Array:
    """Evaluation-mode samples [N, H, W, C] in [-1, 1] of the evaluated generator."""
    return self.generate(self.eval_generator_params(state), state.batch_stats["generator"], z, labels, False)[0]

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Features of the real batch and of as many samples from latents fixed by the batch's content (the same at
    every evaluation); conditional models are asked for the real batch's classes.

    Returns:
      FID moment sums (`generative.feature_sums`), per-example features and `mask` for KID/precision/recall,
      and for conditional models per requested class the counts of samples and of correctly classified ones.
    """
    real = self.input_ops(jax.random.PRNGKey(0), batch["image"], train=False)
    weights = batch["mask"].astype(jnp.float32)
    content = jnp.sum(batch["image"].astype(jnp.int32))
    z = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(17), content), (real.shape[0], self.latent_dim))
    labels = batch["label"].astype(jnp.int32) if self.conditional else None
    fake = self.sample(state, z, labels)
    real_features, _ = self.features(real)
    fake_features, fake_logits = self.features(fake)
    out = {**generative.feature_sums(real_features, weights, "real"),
           **generative.feature_sums(fake_features, weights, "fake"),
           "real_features": real_features, "fake_features": fake_features, "mask": batch["mask"]}
    if self.conditional:
      requested = jax.nn.one_hot(labels, self.num_classes) * weights[:, None]
      correct = (jnp.argmax(fake_logits, -1) == labels).astype(jnp.float32)
      out.update(requested=jnp.sum(requested, 0), correct=jnp.sum(requested * correct[:, None], 0))
    return out

  def evaluators(self) -> list[Evaluator]:
    evaluators: list[Evaluator] = [
        generative.frechet_evaluator(),
        GatherEvaluator(("real_features", "fake_features"), self.reduce_features)]
    if self.conditional:
      evaluators.append(SumEvaluator(("requested", "correct"), gan_eval.conditional_accuracy))
    return evaluators

  def reduce_features(self, rows: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """KID (mean and std over subsets) and improved precision/recall of the gathered features."""
    return generative.feature_set_metrics(rows["real_features"], rows["fake_features"], self.kid_subsets,
                                          self.kid_subset_size, self.pr_k)

  # --- Pictures ------------------------------------------------------------------------------------------------
  def on_evaluation(self, workdir: str, state: TrainState, step: int, metrics: Mapping[str, Any]) -> list[str]:
    """samples.png (fixed latents; one row per class for conditional models), interpolation.png (latent
    interpolation strips), copies under samples/ tagged by step, and both images in TensorBoard."""
    del metrics
    if self._sample_fn is None:
      self._sample_fn = jax.jit(self.sample)
    return gan_eval.write_pictures(workdir, step, self._sample_fn, state, self.latent_dim, self.num_classes,
                                   self.num_samples)

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """Names the latest sample grid and interpolation strip in summary.json."""
    del metrics
    summary.update(gan_eval.picture_paths(workdir))
    return []
