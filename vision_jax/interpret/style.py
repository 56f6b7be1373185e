"""Neural style transfer (Gatys et al., "A Neural Algorithm of Artistic Style", 2015) as an input problem
(`config.task = "style_transfer"`, run by `vision_jax.train_lib.input_opt`; configs/style_transfer.py).

The image starts from the content picture (or noise) and minimises
  content_weight * sum_l mean((F_l(x) - F_l(content))^2)                      over `content_layers`
  + style_weight * sum_l mean((G_l(x) - G_l(style))^2)                         over `style_layers`
  + tv_weight * total_variation(x) / number of pixels,
where F_l are a frozen network's layer outputs and G_l their Gram matrices (`gram_matrix`, normalised by the
number of positions so that pictures of different sizes compare). Optimise with Adam or L-BFGS
(`optimizer.name = lbfgs`). Pixels stay in [0, 1].
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vision_jax.errors import ConfigError
from vision_jax.interpret import image_ops, network as network_lib, probe
from vision_jax.tasks.input_problem import InputProblem, register_problem, save_png, total_variation


def gram_matrix(features: jax.Array) -> jax.Array:
  """Gram matrices of feature maps: G[n, i, j] = sum_p F[n, p, i] F[n, p, j] / P over the P = h * w positions.

  Args:
    features: [N, h, w, c].

  Returns:
    [N, c, c].
  """
  n, h, w, c = features.shape
  flat = features.reshape(n, h * w, c)
  return jnp.einsum("npi,npj->nij", flat, flat) / (h * w)


def layer_list(text: str) -> list[str]:
  """"a, b" or "a+b" (the form a config argument can carry) -> ["a", "b"]."""
  return [name.strip() for name in str(text).replace("+", ",").split(",") if name.strip()]


def load_picture(spec: str, size: int, channels: int, fallback: str) -> np.ndarray:
  """A picture [1, H, W, channels]: an image file, a generated texture name (waves, checks, blobs), "card"
  (a generated digit card) or, when `spec` is empty, `fallback`."""
  spec = spec or fallback
  if spec == "card":
    picture = image_ops.digit_card(0, size)
  elif spec in ("waves", "checks", "blobs"):
    picture = image_ops.texture(spec, size, channels)
  else:
    picture = image_ops.read_image(spec, size, channels)
  if picture.shape[-1] != channels:  # a 1-channel generated card for a 3-channel network
    picture = np.repeat(picture, channels, axis=-1)
  return picture


@register_problem("style_transfer")
class StyleTransfer(network_lib.FrozenNetworkMixin, InputProblem):
  """See the module docstring. Settings (`config.problem`): content, style (file, texture name or "card"),
  size (shorter side), init ("content" or "noise"), content_layers, style_layers (comma-separated module paths,
  `probe.layer_names`), content_weight, style_weight, tv_weight, network (a `network.from_section` section)."""

  curve_metrics = ("loss", "content_loss", "style_loss", "tv_loss")

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__(config)
    p = config.problem
    self.channels = int(p.network.channels)
    self.content = load_picture(p.content, int(p.size), self.channels, "card")
    self.style = load_picture(p.style, int(p.size), self.channels, "waves")
    self.content_layers, self.style_layers = layer_list(p.content_layers), layer_list(p.style_layers)
    if not self.style_layers:
      raise ConfigError("problem.style_layers is empty; name at least one layer, e.g. style_layers=stem,layer1_0")
    if p.init not in ("content", "noise"):
      raise ConfigError(f"problem.init={p.init!r}; use content or noise")
    self.weights = (float(p.content_weight), float(p.style_weight), float(p.tv_weight))

  def init_image(self, rng: jax.Array) -> jax.Array:
    if self.config.problem.init == "noise":
      return jax.random.uniform(rng, self.content.shape, jnp.float32, 0.25, 0.75)
    return jnp.asarray(self.content)

  def features(self, variables: Any, pixels: jax.Array) -> dict[str, jax.Array]:
    """The content and style layers' outputs for pixels [N, H, W, C] in [0, 1]."""
    net = self.network
    layers = list(dict.fromkeys(self.content_layers + self.style_layers))
    return probe.layer_activations(net.model, variables, net.normalize(pixels), layers)

  def constants(self) -> dict[str, Any]:
    variables = self.network.variables
    content = self.features(variables, jnp.asarray(self.content))
    style = self.features(variables, jnp.asarray(self.style))
    return {"variables": variables, "content": {l: content[l] for l in self.content_layers},
            "grams": {l: gram_matrix(style[l]) for l in self.style_layers}}

  def loss(self, image, constants, rng):
    del rng
    feats = self.features(constants["variables"], image)
    content_loss = sum((jnp.mean(jnp.square(feats[l] - constants["content"][l])) for l in self.content_layers),
                       jnp.zeros(()))
    style_loss = sum(jnp.mean(jnp.square(gram_matrix(feats[l]) - constants["grams"][l])) for l in self.style_layers)
    tv_loss = total_variation(image).sum() / image.size
    cw, sw, tw = self.weights
    loss = cw * content_loss + sw * style_loss + tw * tv_loss
    return loss, {"content_loss": content_loss, "style_loss": style_loss, "tv_loss": tv_loss}

  def project(self, image):
    return jnp.clip(image, 0.0, 1.0)

  def identity(self) -> dict[str, Any]:
    p = self.config.problem
    return {"content": str(p.content), "style": str(p.style), "size": int(p.size), "init": str(p.init),
            "content_layers": self.content_layers, "style_layers": self.style_layers, "weights": list(self.weights)}

  def render(self, image, workdir, step):
    written = []
    for name, picture in (("content", self.content), ("style", self.style)):
      path = os.path.join(workdir, f"{name}.png")
      if not os.path.exists(path):
        save_png(picture[0], path)
      written.append(path)
    return super().render(image, workdir, step) + written
