"""The `progan` task: progressive growing of GANs (Karras et al., 2018) with one compiled train step.

The resolution grows 4 -> 8 -> ... -> R (`models.generative.progan`), `progan.steps_per_phase` loop steps per
phase; during the first `fade_fraction` of each phase after the first, alpha rises linearly from 0 to 1 (the new
block fades in), then stays at 1; the last phase continues until the run ends. Phase and alpha are computed from
`state.step` inside the step and passed to the networks as arrays (they blend every resolution's path with weights
that are zero outside the phase), so every shape is static and the step compiles once. Real images are shown to
the discriminator at the phase's resolution, blended during the fade like the generator's output:
(1 - alpha) x up2(pool2(x_p)) + alpha x x_p.

Loss `progan.loss` (`losses.adversarial.LOSS_KINDS`; the paper's main one is wasserstein with a gradient penalty
`gradient_penalty` on random interpolates, it also reports LSGAN), plus the drift term `drift` x E[D(x)^2]; one
discriminator and one generator update per step; generator EMA (`ema_decay`) evaluated. On the CPU the penalty's
second-order convolution gradients cost 10-50x a plain step at 16-32 px, so configs/gan_progan.py defaults to LSGAN.
Evaluation and pictures are the `gan` task's (FID/KID/precision-recall on a feature network trained here, the
images' centre 28x28 for the digits network; samples.png, interpolation.png), at the step's phase.

Config section `progan`: latent_dim, features (width per phase, 4x4 first), steps_per_phase, fade_fraction, loss,
gradient_penalty (0: none), drift, group_size, ema_decay, eval_generator ("ema" | "live": the raw weights), feature_net,
kid_subsets, kid_subset_size, pr_k, num_samples.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vision_jax.data.features import DatasetSpec
from vision_jax.errors import ConfigError
from vision_jax.losses import adversarial
from vision_jax.models.generative import progan
from vision_jax.tasks import base, gan, gan_eval
from vision_jax.train_lib.state import TrainState


@base.register("progan")
class ProGanTask(gan.GanTask):
  """ProGAN; training here, evaluation and pictures inherited from the `gan` task."""

  curve_metrics = ("discriminator_loss", "generator_loss", "gradient_penalty", "phase", "alpha", "fid", "kid",
                   "precision", "recall")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):  # pylint: disable=super-init-not-called
    base.Task.__init__(self, config, spec)
    cfg = config.progan
    self.latent_dim = int(cfg.latent_dim)
    self.widths = tuple(int(w) for w in cfg.features)
    self.num_phases = len(self.widths)
    self.steps_per_phase = int(cfg.steps_per_phase)
    self.fade_steps = max(1, int(round(float(cfg.fade_fraction) * self.steps_per_phase)))
    self.penalty, self.drift, self.ema_decay = float(cfg.gradient_penalty), float(cfg.drift), float(cfg.ema_decay)
    self.loss = str(cfg.loss)
    if self.loss not in adversarial.LOSS_KINDS:
      raise ConfigError(f"unknown progan.loss {self.loss!r}; use one of {', '.join(adversarial.LOSS_KINDS)}")
    if self.steps_per_phase < 1:
      raise ConfigError(f"progan.steps_per_phase is {self.steps_per_phase}; it must be >= 1")
    self.input_ops = base.InputOps(config.input)
    self.image_shape = tuple(self.input_ops.output_shape(spec.image_shape))
    self.resolution = 4 * 2 ** (self.num_phases - 1)
    if self.image_shape[:2] != (self.resolution, self.resolution):
      raise ConfigError(f"progan with {self.num_phases} phases makes {self.resolution}x{self.resolution} images, the "
                        f"data are {self.image_shape[0]}x{self.image_shape[1]}: pad or resize them (input.preprocess "
                        f"pad(to={self.resolution})) or change progan.features")
    self.generator = progan.ProGenerator(self.image_shape[-1], self.widths)
    self.discriminator = progan.ProDiscriminator(self.widths, int(cfg.group_size))
    self.disc_name, self.conditional, self.num_classes = "discriminator", "", 0
    self.eval_ema = self.ema_decay > 0 and str(cfg.get("eval_generator", "ema")) == "ema"  # "live": raw weights
    self.kid_subsets, self.kid_subset_size, self.pr_k = int(cfg.kid_subsets), int(cfg.kid_subset_size), int(cfg.pr_k)
    self.num_samples = int(cfg.num_samples)
    features_shape = (28, 28) + self.image_shape[2:] if self.image_shape[0] == 32 else self.image_shape
    features = gan_eval.feature_extractor(str(cfg.feature_net), features_shape)
    crop = (self.image_shape[0] - features_shape[0]) // 2
    self.features = lambda images: features(images[:, crop:crop + features_shape[0], crop:crop + features_shape[1]])
    self._sample_fn = None

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    if name == "generator":
      return (jnp.zeros((1, self.latent_dim), jnp.float32),)
    return (jnp.zeros((self.discriminator.group_size,) + self.image_shape, jnp.float32),)

  def init_network(self, name: str, rng: jax.Array) -> dict[str, Any]:
    """Every phase's layers (every call computes them all)."""
    return self.networks()[name].init({"params": rng}, *self.example_inputs(name), 0, 1.0)

  def identity(self) -> dict[str, Any]:
    return {"latent_dim": self.latent_dim, "features": list(self.widths), "steps_per_phase": self.steps_per_phase}

  def schedule(self, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(phase int32, alpha float32) of loop step `step` (see the module docstring)."""
    step = jnp.asarray(step, jnp.int32)
    phase = jnp.minimum(step // self.steps_per_phase, self.num_phases - 1)
    into = (step - phase * self.steps_per_phase).astype(jnp.float32)
    alpha = jnp.where(phase == 0, 1.0, jnp.minimum(1.0, into / self.fade_steps))
    return phase, alpha.astype(jnp.float32)

  def faded_reals(self, images: jax.Array, phase: jax.Array, alpha: jax.Array) -> jax.Array:
    """Real images [N, R, R, C] as the phase-`phase` discriminator sees them during the fade, at [N, R, R, C]:
    the images at each level's resolution blended by `progan.blend_weights`."""
    weights = progan.blend_weights(phase, alpha, self.num_phases)
    levels = [progan.upsample_nearest(progan.downsample_average(images, f), f)
              for f in (self.resolution // (4 * 2 ** p) for p in range(self.num_phases))]
    return sum(w * x for w, x in zip(weights, levels))

  def _update(self, state: TrainState, real: jax.Array, z: jax.Array, phase: jax.Array, alpha: jax.Array,
              rng: jax.Array, txs) -> tuple[TrainState, base.Metrics]:
    """One discriminator then one generator update."""
    real = self.faded_reals(real, phase, alpha)
    fake = jax.lax.stop_gradient(self.generator.apply({"params": state.params["generator"]}, z, phase, alpha))

    def discriminator_loss(params):
      def critic(x):
        return self.discriminator.apply({"params": params}, x, phase, alpha)

      real_scores, fake_scores = critic(real), critic(fake)
      loss = adversarial.discriminator_loss(self.loss, real_scores, fake_scores)
      penalty = (adversarial.gradient_penalty(critic, real, fake, rng, self.penalty) if self.penalty > 0
                 else jnp.zeros((), jnp.float32))
      return loss + penalty + self.drift * jnp.mean(jnp.square(real_scores)), (loss, penalty, real_scores,
                                                                                  fake_scores)

    grads, (loss, penalty, real_scores, fake_scores) = jax.grad(discriminator_loss, has_aux=True)(
        state.params["discriminator"])
    state = state.apply_gradients("discriminator", grads, txs["discriminator"])

    def generator_loss(params):
      images = self.generator.apply({"params": params}, z, phase, alpha)
      return adversarial.generator_loss(self.loss,
                                        self.discriminator.apply({"params": state.params["discriminator"]}, images,
                                                                 phase, alpha))

    g_loss, grads = jax.value_and_grad(generator_loss)(state.params["generator"])
    state = state.apply_gradients("generator", grads, txs["generator"])
    return state, {"discriminator_loss": loss, "gradient_penalty": penalty, "real_score": jnp.mean(real_scores),
                   "fake_score": jnp.mean(fake_scores), "generator_loss": g_loss}

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs) -> tuple[TrainState, base.Metrics]:
    """The discriminator and generator updates at the step's phase and alpha, then the generator EMA.

    Returns:
      (state, metrics): discriminator_loss, gradient_penalty, real_score, fake_score, generator_loss, phase, alpha.
    """
    rng = state.step_rng()
    real = self.input_ops(jax.random.fold_in(rng, 0), batch["image"], train=True)
    z = jax.random.normal(jax.random.fold_in(rng, 1), (real.shape[0], self.latent_dim), jnp.float32)
    phase, alpha = self.schedule(state.step)
    state, metrics = self._update(state, real, z, phase, alpha, jax.random.fold_in(rng, 2), txs)
    extras = {**state.extras, "generator_iterations": state.extras["generator_iterations"] + 1}
    if self.ema_decay > 0:
      extras["ema_generator"] = jax.tree.map(lambda e, p: self.ema_decay * e + (1 - self.ema_decay) * p,
                                             extras["ema_generator"], state.params["generator"])
    return state.replace(extras=extras), {**metrics, "phase": phase.astype(jnp.float32), "alpha": alpha}

  def sample(self, state: TrainState, z: jax.Array, labels: jax.Array | None) -> jax.Array:
    """Images [N, R, R, C] in [-1, 1] (clipped) of the evaluated generator at the phase and alpha of `state.step`."""
    del labels
    params = self.eval_generator_params(state)
    phase, alpha = self.schedule(state.step)
    return jnp.clip(self.generator.apply({"params": params}, z, phase, alpha), -1, 1)

  def networks(self) -> dict[str, nn.Module]:
    return {"generator": self.generator, "discriminator": self.discriminator}
