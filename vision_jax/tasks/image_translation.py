"""The `image_translation` task: image-to-image GANs on paired views (`image` the input, `translation.target_key`
the target), in three modes (`translation.mode`):

  * pix2pix (Isola et al., 2017): U-Net generator, PatchGAN discriminator on the (input, image) pair;
    generator loss = adversarial + l1_weight (100) x L1 to the target.
  * cyclegan (Zhu et al., 2017): generators A->B ("generator") and B->A ("generator_ba"), PatchGAN
    discriminators on B ("discriminator") and on A ("discriminator_a"); LSGAN loss, cycle weight 10, identity
    weight 5, each discriminator fed from a 50-image history pool of generated images (`data.image_pool`). The
    pairing of the dataset is broken: each step draws domain B as a random permutation of the batch's targets,
    so the networks never see which target belongs to which input; the evaluation then scores A->B against the
    true pairs.
  * srgan (Ledig et al., 2017): residual pixel-shuffle generator from the low-resolution input, discriminator on
    images; generator loss = content_weight x content (conv features of a feature network trained in this
    project, `translation.content_net`; pixel MSE when "") + pixel_weight x pixel MSE + adversarial_weight (1e-3)
    x adversarial.

Every step updates the discriminator(s) and the generator(s) once (pix2pix/srgan: discriminator first, then the
generator against the updated discriminator; cyclegan: generators first, as in the paper's code).

Evaluation (images in [0, 1] units): `l1` (mean absolute error) and `psnr` (mean over images of 10 log10(1 / MSE))
of the generator's output against the target, the same for the baseline (`baseline_l1`, `baseline_psnr`: bicubic
upsampling of the input when sizes differ, else the input copied), and, with `translation.feature_net`, the FID of
outputs and of the baseline against the targets on that network's features (`vision_jax.evaluation.generative`).
Pictures: translations.png, one row per fixed eval example: input | baseline | output | target.
Unpaired domains stored as two splits (CycleGAN's cycle_gan/*: `dataset.train_split2` / `eval_split2`, read by the
pipeline as `image2`) have no pairs to score: the evaluation then reports `fid` of the outputs G(A) against the
second eval split's images (and `baseline_fid` of the inputs A against them), the best checkpoint the lowest fid.

Config section `translation`: mode, target_key, loss (`losses.adversarial.LOSS_KINDS`), l1_weight, cycle_weight,
identity_weight, pool_size, content_net, content_weight, pixel_weight, adversarial_weight, generator_features,
discriminator_features, num_blocks, dropout, feature_net ("" | a feature network | "pixels"), num_samples.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from vision_jax.data import image_pool
from vision_jax.data.features import DatasetSpec, typed_features
from vision_jax.errors import ConfigError
from vision_jax.evaluation import feature_nets, generative
from vision_jax.evaluation.evaluators import Evaluator, FirstExamplesEvaluator, GatherEvaluator, SumEvaluator
from vision_jax.losses import adversarial, perceptual
from vision_jax.models.generative import cyclegan, pix2pix, srgan
from vision_jax.tasks import base, gan_eval
from vision_jax.train_lib.state import TrainState

MODES = ("pix2pix", "cyclegan", "srgan")
SAMPLE_KEYS = ("sample_input", "sample_baseline", "sample_output", "sample_target")


def psnr_per_image(output: jax.Array, target: jax.Array) -> jax.Array:
  """[N] PSNR in dB of images in [-1, 1], measured in [0, 1] units: 10 log10(1 / MSE) (MSE floored at 1e-10)."""
  mse = perceptual.pixel_loss(output, target, "l2") / 4
  return 10 * jnp.log10(1.0 / jnp.maximum(mse, 1e-10))


def baseline(source: jax.Array, target_shape: tuple[int, ...]) -> jax.Array:
  """The input brought to the target's shape: bicubic upsampling when the sizes differ, else a copy; channels
  repeated from 1 to the target's."""
  n = source.shape[0]
  out = source
  if source.shape[1:3] != tuple(target_shape[:2]):
    out = jnp.clip(jax.image.resize(source, (n,) + tuple(target_shape[:2]) + source.shape[3:], "cubic"), -1, 1)
  if out.shape[-1] != target_shape[-1]:
    out = jnp.broadcast_to(out[..., :1], (n,) + tuple(target_shape))
  return out


@base.register("image_translation")
class ImageTranslationTask(base.Task):
  """pix2pix | cyclegan | srgan; see the module docstring."""

  best_metric = ("psnr", "max")
  builds_own_networks = True
  curve_metrics = ("discriminator_loss", "generator_adversarial", "l1", "cycle", "identity", "content", "psnr",
                   "baseline_psnr", "fid")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    cfg = config.translation
    self.mode, self.target_key, self.loss = str(cfg.mode), str(cfg.target_key), str(cfg.loss)
    if self.mode not in MODES:
      raise ConfigError(f"unknown translation.mode {self.mode!r}; use one of {', '.join(MODES)}")
    if self.loss not in adversarial.LOSS_KINDS:
      raise ConfigError(f"unknown translation.loss {self.loss!r}; use one of {', '.join(adversarial.LOSS_KINDS)}")
    if config.input.augment:
      raise ConfigError("image_translation applies no input.augment (it would move input and target apart); "
                        "set input.augment=''")
    self.cfg = cfg
    self.input_ops = base.InputOps(config.input)
    size = int(config.input.image_size)  # > 0: every image is resized to size x size on the host

    def model_shape(stored):
      return tuple(self.input_ops.output_shape((size, size, stored[-1]) if size > 0 else stored))

    self.source_shape = model_shape(spec.image_shape)
    target = typed_features(spec).get(self.target_key)
    # A dataset of one domain (cycle_gan/*: one split per domain) has no target; the networks are still built.
    self.target_shape = model_shape(target.shape) if target is not None else self.source_shape
    self.has_target = target is not None
    self.unpaired_eval = bool(config.dataset.get("eval_split2", ""))
    if self.unpaired_eval:
      if not cfg.feature_net:
        raise ConfigError("an unpaired evaluation (dataset.eval_split2) is scored by FID only; set "
                          "translation.feature_net (e.g. pixels)")
      self.best_metric = ("fid", "min")
    self.num_samples = int(cfg.num_samples)
    g_features, d_features = tuple(cfg.generator_features), tuple(cfg.discriminator_features)
    out_channels = self.target_shape[-1]
    if self.mode == "pix2pix":
      self.generator = pix2pix.UNetGenerator(out_channels, g_features, float(cfg.dropout))
      self.discriminator = pix2pix.PatchDiscriminator(d_features)
    elif self.mode == "cyclegan":
      if self.source_shape != self.target_shape:
        raise ConfigError(f"cyclegan needs both domains of one shape, got {self.source_shape} and "
                          f"{self.target_shape}; set input.image_size or use mode pix2pix/srgan")
      self.generator = cyclegan.ResnetGenerator(out_channels, g_features[0], len(g_features), int(cfg.num_blocks))
      self.generator_ba = cyclegan.ResnetGenerator(self.source_shape[-1], g_features[0], len(g_features),
                                                   int(cfg.num_blocks))
      self.discriminator = pix2pix.PatchDiscriminator(d_features)
      self.discriminator_a = pix2pix.PatchDiscriminator(d_features)
    else:
      scale = self.target_shape[0] // self.source_shape[0]
      if self.source_shape[0] * scale != self.target_shape[0]:
        raise ConfigError(f"srgan needs the target size a multiple of the input's, got {self.source_shape} -> "
                          f"{self.target_shape}; use digit_lowres2highres or resize the views")
      self.generator = srgan.SRGenerator(out_channels, scale, g_features[0], int(cfg.num_blocks))
      self.discriminator = srgan.SRDiscriminator(d_features)
    self.content_net = feature_nets.load(str(cfg.content_net)) if self.mode == "srgan" and cfg.content_net else None
    self.features = (gan_eval.feature_extractor(str(cfg.feature_net), self.target_shape) if cfg.feature_net
                     else None)
    self._translate_fn = None

  # --- Networks and state ----------------------------------------------------------------------------------------
  def networks(self) -> dict[str, nn.Module]:
    nets = {"generator": self.generator, "discriminator": self.discriminator}
    if self.mode == "cyclegan":
      nets.update(generator_ba=self.generator_ba, discriminator_a=self.discriminator_a)
    return nets

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    if name in ("generator", "generator_ba"):
      return (jnp.zeros((1,) + (self.source_shape if name == "generator" else self.target_shape), jnp.float32),)
    if name == "discriminator_a":
      return (jnp.zeros((1,) + self.source_shape, jnp.float32),)
    channels = self.target_shape[-1] + (self.source_shape[-1] if self.mode == "pix2pix" else 0)
    return (jnp.zeros((1,) + self.target_shape[:2] + (channels,), jnp.float32),)

  def init_extras(self, rng: jax.Array) -> dict[str, Any]:
    """The two history pools of cyclegan (empty), nothing otherwise."""
    del rng
    if self.mode != "cyclegan":
      return {}
    size = int(self.cfg.pool_size)
    return {"pool_a": image_pool.init_pool(size, self.source_shape),
            "pool_b": image_pool.init_pool(size, self.target_shape)}

  def identity(self) -> dict[str, Any]:
    return {"mode": self.mode, "target_key": self.target_key}

  # --- Pieces ----------------------------------------------------------------------------------------------------
  def views(self, batch: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """(input [N, h, w, c], target [N, H, W, C]) of a batch in [-1, 1] (the input ops without augmentation)."""
    if self.target_key not in batch:
      raise ConfigError(f"translation needs the target view {self.target_key!r} in every batch; dataset "
                        f"{self.spec.name!r} has none (a one-domain split): set dataset.train_split2 and "
                        "eval_split2 to the other domain's splits, or train on a paired dataset such as "
                        "digit_edges2digit")
    key = jax.random.PRNGKey(0)
    return self.input_ops(key, batch["image"], False), self.input_ops(key, batch[self.target_key], False)

  def _apply(self, name: str, params: Any, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    module = self.networks()[name]
    if rng is None:
      return module.apply({"params": params}, x, train=False)
    return module.apply({"params": params}, x, train=True, rngs={"dropout": rng})

  def _judged(self, source: jax.Array, image: jax.Array) -> jax.Array:
    """What the discriminator sees: pix2pix judges the (input, image) pair, the other modes the image alone."""
    return jnp.concatenate([source, image], -1) if self.mode == "pix2pix" else image

  def reconstruction_losses(self, output: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
    """The generator's non-adversarial terms (weighted, batch means): pix2pix `l1`; srgan `content`, `pixel`."""
    if self.mode == "pix2pix":
      return {"l1": self.cfg.l1_weight * jnp.mean(perceptual.pixel_loss(output, target, "l1"))}
    pixel = jnp.mean(perceptual.pixel_loss(output, target, "l2"))
    if self.content_net is None:
      content = pixel
    else:
      variables = {"params": self.content_net.params}
      content = jnp.mean(perceptual.content_loss(
          perceptual.conv_features(self.content_net.module, variables, output),
          perceptual.conv_features(self.content_net.module, variables, jax.lax.stop_gradient(target))))
    return {"content": self.cfg.content_weight * content, "pixel": self.cfg.pixel_weight * pixel}

  # --- Training --------------------------------------------------------------------------------------------------
  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs) -> tuple[TrainState, base.Metrics]:
    """One update of every network (see the module docstring).

    Returns:
      (state, metrics): discriminator_loss, generator_adversarial and the generator's weighted terms.
    """
    if self.mode == "cyclegan":
      return self._cyclegan_step(state, batch, txs)
    rng = state.step_rng()
    source, target = self.views(batch)
    output, pull_back = jax.vjp(lambda p: self._apply("generator", p, source, jax.random.fold_in(rng, 1)),
                                state.params["generator"])
    fake = jax.lax.stop_gradient(output)

    def discriminator_loss(params):
      real_scores = self._apply("discriminator", params, self._judged(source, target))
      fake_scores = self._apply("discriminator", params, self._judged(source, fake))
      return adversarial.discriminator_loss(self.loss, real_scores, fake_scores)

    d_loss, grads = jax.value_and_grad(discriminator_loss)(state.params["discriminator"])
    state = state.apply_gradients("discriminator", grads, txs["discriminator"])
    weight = 1.0 if self.mode == "pix2pix" else float(self.cfg.adversarial_weight)

    def generator_loss(image):
      scores = self._apply("discriminator", state.params["discriminator"], self._judged(source, image))
      adv = adversarial.generator_loss(self.loss, scores)
      terms = self.reconstruction_losses(image, target)
      return weight * adv + sum(terms.values()), {"generator_adversarial": adv, **terms}

    grad_output, terms = jax.grad(generator_loss, has_aux=True)(output)
    state = state.apply_gradients("generator", pull_back(grad_output)[0], txs["generator"])
    return state, {"discriminator_loss": d_loss, **terms}

  def _cyclegan_step(self, state: TrainState, batch: dict[str, jax.Array], txs) -> tuple[TrainState, base.Metrics]:
    rng = state.step_rng()
    real_a, paired_b = self.views(batch)
    real_b = paired_b[jax.random.permutation(jax.random.fold_in(rng, 0), paired_b.shape[0])]
    cfg = self.cfg

    def generators_loss(params):
      p_ab, p_ba = params
      fake_b, fake_a = self._apply("generator", p_ab, real_a), self._apply("generator_ba", p_ba, real_b)
      adv = (adversarial.generator_loss(self.loss, self._apply("discriminator", state.params["discriminator"], fake_b))
             + adversarial.generator_loss(self.loss,
                                          self._apply("discriminator_a", state.params["discriminator_a"], fake_a)))
      cycle = (jnp.mean(jnp.abs(self._apply("generator_ba", p_ba, fake_b) - real_a))
               + jnp.mean(jnp.abs(self._apply("generator", p_ab, fake_a) - real_b)))
      terms = {"generator_adversarial": adv, "cycle": cfg.cycle_weight * cycle}
      if cfg.identity_weight > 0:
        identity = (jnp.mean(jnp.abs(self._apply("generator", p_ab, real_b) - real_b))
                    + jnp.mean(jnp.abs(self._apply("generator_ba", p_ba, real_a) - real_a)))
        terms["identity"] = cfg.identity_weight * identity
      return sum(terms.values()), (terms, fake_a, fake_b)

    grads, (terms, fake_a, fake_b) = jax.grad(generators_loss, has_aux=True)(
        (state.params["generator"], state.params["generator_ba"]))
    state = state.apply_gradients("generator", grads[0], txs["generator"])
    state = state.apply_gradients("generator_ba", grads[1], txs["generator_ba"])
    pool_a, fake_a = image_pool.query_pool(state.extras["pool_a"], jax.lax.stop_gradient(fake_a),
                                           jax.random.fold_in(rng, 1))
    pool_b, fake_b = image_pool.query_pool(state.extras["pool_b"], jax.lax.stop_gradient(fake_b),
                                           jax.random.fold_in(rng, 2))
    state = state.replace(extras={**state.extras, "pool_a": pool_a, "pool_b": pool_b})
    d_losses = {}
    for name, real, fake in (("discriminator", real_b, fake_b), ("discriminator_a", real_a, fake_a)):
      def loss_fn(params, name=name, real=real, fake=fake):
        return adversarial.discriminator_loss(self.loss, self._apply(name, params, real),
                                              self._apply(name, params, fake))

      d_losses[name], grads = jax.value_and_grad(loss_fn)(state.params[name])
      state = state.apply_gradients(name, grads, txs[name])
    return state, {"discriminator_loss": d_losses["discriminator"],
                   "discriminator_a_loss": d_losses["discriminator_a"], **terms}

  # --- Evaluation ------------------------------------------------------------------------------------------------
  def translate(self, state: TrainState, source: jax.Array) -> jax.Array:
    """Evaluation-mode output [N, H, W, C] in [-1, 1] of the generator (A->B) for inputs in [-1, 1]."""
    return self._apply("generator", state.params["generator"], source)

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Sums of L1 and PSNR of the output and of the baseline, FID moment sums, and the batch's images for the
    pictures (kept for the first `num_samples` examples only). Unpaired (a `mask2` from `eval_split2`): FID moment
    sums only, the targets weighted by `mask2`."""
    source, target = self.views(batch)
    output = self.translate(state, source)
    copy = baseline(source, self.target_shape)
    weights = batch["mask"].astype(jnp.float32)
    out = {"count": jnp.sum(weights), "mask": batch["mask"]}
    if not self.unpaired_eval:
      for prefix, image in (("", output), ("baseline_", copy)):
        out[prefix + "l1"] = jnp.sum(perceptual.pixel_loss(image, target, "l1") / 2 * weights)
        out[prefix + "psnr"] = jnp.sum(psnr_per_image(image, target) * weights)
    target_weights = batch["mask2"].astype(jnp.float32) if self.unpaired_eval else weights
    if self.features is not None:
      for prefix, image, w in (("real", target, target_weights), ("fake", output, weights), ("copy", copy, weights)):
        features = self.features(image)[0]
        out.update(generative.feature_sums(features, w, prefix))
        if prefix != "copy" and not self.unpaired_eval:  # per-example rows for KID and precision/recall
          out[prefix + "_features"] = features
    shown_source = baseline(jax.image.resize(source, source.shape[:1] + self.target_shape[:2] + source.shape[3:],
                                             "nearest"), self.target_shape)
    out.update(zip(SAMPLE_KEYS, (shown_source, copy, output, target)))
    return out

  def evaluators(self) -> list[Evaluator]:
    evaluators: list[Evaluator] = [FirstExamplesEvaluator(SAMPLE_KEYS, self.num_samples, prefix="")]
    if not self.unpaired_eval:
      evaluators.append(SumEvaluator(("l1", "psnr", "baseline_l1", "baseline_psnr", "count"), self.reduce_sums))
    if self.features is not None:
      evaluators += [generative.frechet_evaluator("real", "fake", "fid"),
                     generative.frechet_evaluator("real", "copy", "baseline_fid")]
      if not self.unpaired_eval:
        evaluators.append(GatherEvaluator(("real_features", "fake_features"),
                                          lambda rows: generative.feature_set_metrics(rows["real_features"],
                                                                                      rows["fake_features"])))
    return evaluators

  @staticmethod
  def reduce_sums(sums: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Means over the eval split of the per-image L1 and PSNR of the output and of the baseline."""
    count = float(sums["count"])
    return {**{k: float(sums[k]) / count for k in ("l1", "psnr", "baseline_l1", "baseline_psnr")},
            "num_examples": int(round(count))}

  # --- Pictures --------------------------------------------------------------------------------------------------
  def on_evaluation(self, workdir: str, state: TrainState, step: int, metrics: Mapping[str, Any]) -> list[str]:
    """translations.png (one row per fixed eval example: input | baseline | output | target), a step-tagged copy
    under samples/ and the picture in TensorBoard."""
    del state
    if not all(k in metrics for k in SAMPLE_KEYS):
      return []
    rows = np.stack([np.asarray(metrics[k], np.float32) for k in SAMPLE_KEYS], 1)  # [K, 4, H, W, C]
    picture = gan_eval.image_grid(rows.reshape((-1,) + rows.shape[2:]), len(SAMPLE_KEYS))
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    paths = [os.path.join(workdir, "translations.png"),
             os.path.join(workdir, "samples", f"translations_{step:07d}.png")]
    for path in paths:
      Image.fromarray(picture).save(path)
    gan_eval.write_tensorboard_images(workdir, step, {"translation/triplets": picture})
    return paths

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """Names the latest translations.png in summary.json."""
    del metrics
    summary["translations_png"] = os.path.join(workdir, "translations.png")
    return []
