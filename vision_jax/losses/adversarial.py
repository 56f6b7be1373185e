"""Adversarial losses: the GAN game in its common forms, the WGAN-GP gradient penalty and WGAN weight clipping.

Logits are raw discriminator/critic outputs of any shape ([N], or [N, H, W] for a PatchGAN); every loss is the mean
over all their elements. With sigma the logistic sigmoid and softplus(x) = log(1 + e^x):

  kind            discriminator / critic loss                   generator loss
  minimax         E[softplus(-D(x))] + E[softplus(D(G(z)))]       -E[softplus(D(G(z)))]  (= E[log(1 - sigma(D(G(z))))])
  non_saturating  same as minimax                               E[softplus(-D(G(z)))]  (= -E[log sigma(D(G(z)))])
  lsgan           1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]        1/2 E[(D(G(z)) - 1)^2]
  hinge           E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]      -E[D(G(z))]
  wasserstein     E[D(G(z))] - E[D(x)]                          -E[D(G(z))]

References:
  Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (minimax; the non-saturating generator loss is
  their section 3 remark).
  Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017 (lsgan, the a=0, b=c=1 coding).
  Lim & Ye, "Geometric GAN", 2017; Miyato et al., "Spectral Normalization for GANs", ICLR 2018 (hinge).
  Arjovsky, Chintala, Bottou, "Wasserstein GAN", ICML 2017 (wasserstein loss, weight clipping).
  Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017 (gradient penalty on random interpolates).
  Mao et al., "Mode Seeking Generative Adversarial Networks for Diverse Image Synthesis", CVPR 2019
  (`mode_seeking_loss`, against conditional mode collapse).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError

LOSS_KINDS = ("minimax", "non_saturating", "lsgan", "hinge", "wasserstein")


def _check_kind(kind: str) -> None:
  if kind not in LOSS_KINDS:
    raise ConfigError(f"unknown adversarial loss {kind!r}; use one of {', '.join(LOSS_KINDS)}")


def discriminator_loss(kind: str, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """The discriminator's (or critic's) loss, to be minimised (see the module table).

  Args:
    kind: one of `LOSS_KINDS`.
    real_logits: [N, ...] outputs on real images.
    fake_logits: [M, ...] outputs on generated images.

  Returns:
    [] float32 loss.
  """
  _check_kind(kind)
  real = jnp.asarray(real_logits, jnp.float32)
  fake = jnp.asarray(fake_logits, jnp.float32)
  if kind in ("minimax", "non_saturating"):
    return jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake))
  if kind == "lsgan":
    return 0.5 * jnp.mean(jnp.square(real - 1.0)) + 0.5 * jnp.mean(jnp.square(fake))
  if kind == "hinge":
    return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))
  return jnp.mean(fake) - jnp.mean(real)


def generator_loss(kind: str, fake_logits: jax.Array) -> jax.Array:
  """The generator's loss, to be minimised (see the module table).

  Args:
    kind: one of `LOSS_KINDS`.
    fake_logits: [M, ...] discriminator outputs on generated images.

  Returns:
    [] float32 loss.
  """
  _check_kind(kind)
  fake = jnp.asarray(fake_logits, jnp.float32)
  if kind == "minimax":
    return -jnp.mean(jax.nn.softplus(fake))
  if kind == "non_saturating":
    return jnp.mean(jax.nn.softplus(-fake))
  if kind == "lsgan":
    return 0.5 * jnp.mean(jnp.square(fake - 1.0))
  return -jnp.mean(fake)


def random_interpolates(real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
  """Points eps * real + (1 - eps) * fake with one eps ~ U[0, 1] per example (Gulrajani et al., algorithm 1).

  Args:
    real: [N, ...] real images.
    fake: [N, ...] generated images.
    rng: PRNG key.

  Returns:
    [N, ...] float32 interpolates.
  """
  real = jnp.asarray(real, jnp.float32)
  eps = jax.random.uniform(rng, (real.shape[0],) + (1,) * (real.ndim - 1), jnp.float32)
  return eps * real + (1.0 - eps) * jnp.asarray(fake, jnp.float32)


def gradient_penalty_at(critic_fn: Callable[[jax.Array], jax.Array], points: jax.Array,
                        weight: float = 10.0) -> jax.Array:
  """weight * E[(||grad_x D(x)||_2 - 1)^2] over `points`, the norm taken per example over all its elements.

  Args:
    critic_fn: images [N, ...] -> scores [N] (or [N, ...]: per-example scores are summed first).
    points: [N, ...] where to take the gradient.
    weight: lambda (10 in the paper).

  Returns:
    [] float32 penalty; differentiable with respect to whatever `critic_fn` closes over (its parameters).
  """
  def summed_scores(x):
    scores = critic_fn(x)
    return jnp.sum(scores.astype(jnp.float32))

  grads = jax.grad(summed_scores)(points)
  # The small constant keeps the norm's gradient finite where a critic's input gradient is exactly 0.
  norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1) + 1e-12)
  return weight * jnp.mean(jnp.square(norms - 1.0))


def gradient_penalty(critic_fn: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array, rng: jax.Array,
                     weight: float = 10.0) -> jax.Array:
  """The WGAN-GP penalty (Gulrajani et al.) on random interpolates between real and generated images.

  Args:
    critic_fn: images [N, ...] -> scores [N].
    real: [N, ...] real images.
    fake: [N, ...] generated images (treated as constants: pass `jax.lax.stop_gradient` ones or not, the
      penalty is differentiated with respect to the critic's parameters only by the caller).
    rng: PRNG key for the interpolation coefficients.
    weight: lambda.

  Returns:
    [] float32 penalty.
  """
  return gradient_penalty_at(critic_fn, random_interpolates(real, fake, rng), weight)


def clip_weights(params: Any, c: float) -> Any:
  """Every parameter clipped to [-c, c] (WGAN's Lipschitz constraint, applied after each critic update).

  Args:
    params: a pytree of arrays.
    c: clipping bound (0.01 in the paper); must be positive.

  Returns:
    The clipped pytree, same structure and dtypes.
  """
  if not c > 0:
    raise ConfigError(f"weight clipping bound must be positive, got {c}; set gan.clip to e.g. 0.01")
  return jax.tree.map(lambda p: jnp.clip(p, -c, c).astype(p.dtype), params)


def mode_seeking_loss(images: jax.Array, latents: jax.Array, epsilon: float = 1e-5) -> jax.Array:
  """MSGAN's term for the generator: 1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + epsilon), the two halves of the
  batch being the pairs (same conditions, different latents); small when different latents give different images.

  Args:
    images: [2M, ...] generated images, example i paired with example i + M.
    latents: [2M, L] their latents.
    epsilon: keeps the term finite when the images coincide.

  Returns:
    The scalar term (the paper's official code; its weight is the caller's).
  """
  half = images.shape[0] // 2
  if half == 0 or images.shape[0] % 2:
    raise ConfigError(f"the mode-seeking term pairs the two halves of the batch; got {images.shape[0]} images: use an "
                      "even batch size")
  image_gap = jnp.mean(jnp.abs(images[:half].astype(jnp.float32) - images[half:].astype(jnp.float32)))
  latent_gap = jnp.mean(jnp.abs(latents[:half].astype(jnp.float32) - latents[half:].astype(jnp.float32)))
  return 1.0 / (image_gap / latent_gap + epsilon)
