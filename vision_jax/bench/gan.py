"""Bench row of the GAN family: one DCGAN train step (a discriminator update on real and generated images, then a
generator update), ours (JAX, `vision_jax.models.generative` + `vision_jax.losses.adversarial`, the computation of
the `gan` task's step with n_critic = 1) beside the same networks and losses written by hand in PyTorch.

Both: 28x28x1 images, batch 64, latent 100, width 32 (generator: dense 100 -> 7x7x64, BN, ReLU, 4x4 stride-2
transposed convs 64 -> 32 (BN, ReLU) -> 1, tanh; discriminator: 4x4 stride-2 convs 1 -> 32 (LeakyReLU 0.2) ->
64 (BN, LeakyReLU), dense -> 1), non-saturating loss, Adam 2e-4 with b1 0.5 for both networks.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vision_jax.bench import timing

BATCH, SIZE, LATENT, WIDTH = 64, 28, 100, 32
WHAT = f"dcgan w{WIDTH} z{LATENT} D+G step b{BATCH} {SIZE}x{SIZE}x1"


def _real() -> np.ndarray:
  return np.random.default_rng(0).uniform(-1, 1, (BATCH, SIZE, SIZE, 1)).astype(np.float32)


def _ours(steps: int) -> dict[str, Any]:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from vision_jax.backends.cpu import rewrites as xla_cpu  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from vision_jax.losses import adversarial  # pylint: disable=import-outside-toplevel
  from vision_jax.models import generative  # pylint: disable=import-outside-toplevel

  real = jnp.asarray(_real())
  g, d = generative.Generator((SIZE, SIZE, 1), WIDTH), generative.Discriminator(WIDTH)
  g_vars = g.init(jax.random.PRNGKey(0), jnp.zeros((1, LATENT)))
  d_vars = d.init(jax.random.PRNGKey(1), real[:1])
  tx = optax.adam(2e-4, b1=0.5)
  state = {"g": g_vars, "d": d_vars, "g_opt": tx.init(g_vars["params"]), "d_opt": tx.init(d_vars["params"]),
           "rng": jax.random.PRNGKey(2)}

  @xla_cpu.jit_train_step
  def train_step(state):
    rng, z_rng, z2_rng = jax.random.split(state["rng"], 3)
    fake, _ = g.apply(state["g"], jax.random.normal(z_rng, (BATCH, LATENT)), train=True, mutable=["batch_stats"])
    fake = jax.lax.stop_gradient(fake)

    def d_loss(params):
      real_scores, upd = d.apply({"params": params, **{"batch_stats": state["d"]["batch_stats"]}}, real, train=True,
                                 mutable=["batch_stats"])
      fake_scores, upd = d.apply({"params": params, **upd}, fake, train=True, mutable=["batch_stats"])
      return adversarial.discriminator_loss("non_saturating", real_scores, fake_scores), upd

    grads, d_stats = jax.grad(d_loss, has_aux=True)(state["d"]["params"])
    updates, d_opt = tx.update(grads, state["d_opt"], state["d"]["params"])
    d_vars = {"params": optax.apply_updates(state["d"]["params"], updates), **d_stats}

    def g_loss(params):
      fake, upd = g.apply({"params": params, "batch_stats": state["g"]["batch_stats"]},
                          jax.random.normal(z2_rng, (BATCH, LATENT)), train=True, mutable=["batch_stats"])
      scores, _ = d.apply(d_vars, fake, train=True, mutable=["batch_stats"])
      return adversarial.generator_loss("non_saturating", scores), upd

    grads, g_stats = jax.grad(g_loss, has_aux=True)(state["g"]["params"])
    updates, g_opt = tx.update(grads, state["g_opt"], state["g"]["params"])
    g_vars = {"params": optax.apply_updates(state["g"]["params"], updates), **g_stats}
    return {"g": g_vars, "d": d_vars, "g_opt": g_opt, "d_opt": d_opt, "rng": rng}

  sample = xla_cpu.jit_step(lambda v, z: g.apply(v, z))
  z = jnp.asarray(np.random.default_rng(1).normal(size=(BATCH, LATENT)), jnp.float32)
  holder = [state]

  def step():
    holder[0] = train_step(holder[0])
    return holder[0]

  train = timing.time_steps(step, jax.block_until_ready, 3, steps)
  evaluation = timing.time_steps(lambda: sample(holder[0]["g"], z), jax.block_until_ready, 3, steps)
  return {"train": train, "eval": evaluation, "note": f"jax {jax.__version__}"}


def _torch(steps: int) -> dict[str, Any]:
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn as tnn  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  real = torch.from_numpy(_real()).permute(0, 3, 1, 2).contiguous()

  class Generator(tnn.Module):
    def __init__(self):
      super().__init__()
      self.project = tnn.Linear(LATENT, 7 * 7 * 2 * WIDTH, bias=False)
      self.body = tnn.Sequential(tnn.BatchNorm2d(2 * WIDTH), tnn.ReLU(),
                                 tnn.ConvTranspose2d(2 * WIDTH, WIDTH, 4, 2, 1, bias=False), tnn.BatchNorm2d(WIDTH),
                                 tnn.ReLU(), tnn.ConvTranspose2d(WIDTH, 1, 4, 2, 1), tnn.Tanh())

    def forward(self, z):
      return self.body(self.project(z).view(-1, 2 * WIDTH, 7, 7))

  g = Generator()
  d = tnn.Sequential(tnn.Conv2d(1, WIDTH, 4, 2, 1), tnn.LeakyReLU(0.2),
                    tnn.Conv2d(WIDTH, 2 * WIDTH, 4, 2, 1, bias=False),
                     tnn.BatchNorm2d(2 * WIDTH), tnn.LeakyReLU(0.2), tnn.Flatten(), tnn.Linear(7 * 7 * 2 * WIDTH, 1))
  for module in list(g.modules()) + list(d.modules()):
    if isinstance(module, (tnn.Conv2d, tnn.ConvTranspose2d, tnn.Linear)):
      tnn.init.normal_(module.weight, 0.0, 0.02)
  g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))

  def train_step():
    fake = g(torch.randn(BATCH, LATENT)).detach()
    d_opt.zero_grad(set_to_none=True)
    d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    g_loss = F.softplus(-d(g(torch.randn(BATCH, LATENT)))).mean()
    g_loss.backward()
    g_opt.step()
    return g_loss

  z = torch.randn(BATCH, LATENT)

  def eval_step():
    g.eval()
    with torch.no_grad():
      out = g(z)
    g.train()
    return out

  return timing.torch_timings(torch, train_step, eval_step, steps)


def measure(framework: str, steps: int) -> dict[str, Any]:
  """Images per second of the DCGAN train step (both updates) and of sampling (module docstring).

  Args:
    framework: "ours" or "torch".
    steps: timed steps (20 when 0).
  """
  steps = steps or 20
  result = _ours(steps) if framework == "ours" else _torch(steps)
  return timing.family_row(WHAT, BATCH, result)
