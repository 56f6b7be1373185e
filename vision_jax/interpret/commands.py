"""What `python -m vision_jax.interpret METHOD ...` does: heatmap overlays for the attribution methods, and grids
for filters, activations and activation maximisation. Each command returns the paths it wrote."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vision_jax.errors import ConfigError
from vision_jax.interpret import attribution, cam, image_ops, probe, views
from vision_jax.interpret.network import Network
from vision_jax.plots import heatmaps

HEATMAP_METHODS = ("saliency", "smoothgrad", "guided_backprop", "integrated_gradients", "occlusion", "gradcam",
                   "gradcam++")
GRID_METHODS = ("filters", "activations", "maximize", "layers")


def default_layer(net: Network, images: jax.Array) -> str:
  """The last top-level module with feature-map outputs (e.g. ResNet's "layer4_1"): Grad-CAM's usual layer."""
  names = views.layer_choices(probe.layer_names(net.model, net.variables, net.normalize(images)))
  top = [n for n in names if "/" not in n] or names
  if not top:
    raise ConfigError(f"{net.name} has no layer with feature maps [N, h, w, c]")
  return top[-1]


def heatmaps_of(net: Network, method: str, images: jax.Array, targets: jax.Array, layer: Optional[str] = None,
                rng: Optional[jax.Array] = None) -> jax.Array:
  """One attribution map per image [N, H, W] of `method` (HEATMAP_METHODS) for pixels in [0, 1].

  Args:
    net: the network.
    method: one of HEATMAP_METHODS.
    images: [N, H, W, C] in [0, 1].
    targets: [N] classes the maps explain.
    layer: the CAM layer (`default_layer` when None).
    rng: SmoothGrad's noise key (PRNGKey(0) when None).
  """
  if method in ("gradcam", "gradcam++"):
    layer = layer or default_layer(net, images)
    maps, _ = cam.class_activation_maps(net.model, net.variables, net.normalize(images), layer, targets, method,
                                        size=images.shape[1:3])
    return maps
  if method == "guided_backprop":
    guided = net.with_model(attribution.guided_model(net.model))
    raw = attribution.guided_backprop(guided.logits, images, targets)
  elif method == "saliency":
    raw = attribution.input_gradients(net.logits, images, targets)
  elif method == "smoothgrad":
    raw = attribution.smoothgrad(net.logits, images, targets, rng if rng is not None else jax.random.PRNGKey(0))
  elif method == "integrated_gradients":
    raw = attribution.integrated_gradients(net.logits, images, targets)
  elif method == "occlusion":
    window = max(2, images.shape[1] // 8)
    raw = attribution.occlusion(net.logits, images, targets, window=window, stride=max(1, window // 2))
  else:
    raise ConfigError(f"unknown method {method!r}; use one of {', '.join(HEATMAP_METHODS + GRID_METHODS)}")
  return attribution.pixel_map(raw, attribution.REDUCTIONS[method])


def load_images(paths: Sequence[str], net: Network) -> jax.Array:
  """Image files as [N, H, W, C] in [0, 1], resized to the network's input size and channels."""
  if not paths:
    raise ConfigError("no images: pass --images=a.png,b.png")
  height, width, channels = net.image_shape
  out = []
  for path in paths:
    image = image_ops.read_image(path, None, channels)
    if image.shape[1:3] != (height, width):
      image = np.asarray(image_ops.resize(jnp.asarray(image), (height, width)))
    out.append(image[0])
  return jnp.asarray(np.stack(out))


def overlays(net: Network, method: str, paths: Sequence[str], out_dir: str, layer: Optional[str] = None,
             target: Optional[int] = None) -> list[str]:
  """Writes <out_dir>/<image name>_<method>.png for every image: the image, the heatmap over it with a colour bar,
  and the predicted class and probability in the title."""
  images = load_images(paths, net)
  probs = jax.nn.softmax(net.logits(images), axis=-1)
  predicted = jnp.argmax(probs, axis=-1)
  if target is not None and not 0 <= target < probs.shape[-1]:
    raise ConfigError(f"--class={target} is not a class of this {probs.shape[-1]}-class network")
  targets = predicted if target is None else jnp.full_like(predicted, target)
  maps = np.asarray(heatmaps_of(net, method, images, targets, layer))
  written = []
  for k, path in enumerate(paths):
    names = net.class_names
    title = f"predicted {names[int(predicted[k])]} (p = {float(probs[k, predicted[k]]):.2f})"
    if int(targets[k]) != int(predicted[k]):
      title += f"; map of class {names[int(targets[k])]} (p = {float(probs[k, targets[k]]):.2f})"
    shown = method + (f" @ {layer or default_layer(net, images)}" if method.startswith("gradcam") else "")
    stem = os.path.splitext(os.path.basename(path))[0]
    target_path = os.path.join(out_dir, f"{stem}_{method}.png")
    written.append(heatmaps.heatmap_overlay(np.asarray(images[k]), maps[k], target_path, title, shown,
                                            signed=method in ("integrated_gradients", "occlusion")))
  return written


def filters_grid(net: Network, out_dir: str) -> list[str]:
  """Writes filters.png: the first convolution's filters."""
  pictures = views.filter_images(views.first_conv_kernel(net.variables))
  captions = [str(k) for k in range(len(pictures))]
  return [heatmaps.image_grid_figure(pictures, os.path.join(out_dir, "filters.png"),
                                     f"{net.name}: first-layer filters {pictures.shape[1]}x{pictures.shape[2]} "
                                     "(grey = 0)", captions)]


def activations_grid(net: Network, paths: Sequence[str], out_dir: str, layer: Optional[str] = None) -> list[str]:
  """Writes <image name>_activations_<layer>.png: each channel of `layer` for each image."""
  images = load_images(paths, net)
  layer = layer or default_layer(net, images)
  written = []
  for k, path in enumerate(paths):
    maps = views.activation_maps(net.model, net.variables, net.normalize(images[k:k + 1]), layer)
    stem = os.path.splitext(os.path.basename(path))[0]
    written.append(heatmaps.image_grid_figure(
        maps, os.path.join(out_dir, f"{stem}_activations_{layer.replace('/', '_')}.png"),
        f"{stem}: {layer} channels (each scaled to its own range)", [str(c) for c in range(len(maps))]))
  return written


def maximize_grid(net: Network, out_dir: str, layer: str = "logits", channels: str = "0-9", steps: int = 150,
                  size: Optional[int] = None) -> list[str]:
  """Writes maximize_<layer>.png: one image per channel of `layer` grown by activation maximisation
  (`views.ActivationMax` with its default penalties, Adam, no checkpoints)."""
  config = ml_collections.ConfigDict({
      "seed": 0, "num_train_steps": steps,
      "problem": {"layer": layer, "channels": channels, "size": size or net.image_shape[0], "noise": 0.05,
                  "l2_weight": 1.0, "tv_weight": 0.05, "octaves": 2, "octave_scale": 1.5, "jitter": 2, "blur": 0.3,
                  "network": {"channels": net.image_shape[-1], "kind": "given", "model": net.name}}})
  problem = views.ActivationMax(config)
  problem._network = net  # pylint: disable=protected-access  (the network is given, not loaded)
  tx = optax.adam(0.02)
  image = problem.init_image(jax.random.PRNGKey(0))
  constants = problem.constants()

  @jax.jit
  def step(image, opt_state, rng):
    (loss, metrics), grads = jax.value_and_grad(problem.loss, has_aux=True)(image, constants, rng)
    updates, opt_state = tx.update(grads, opt_state, image)
    return problem.project(optax.apply_updates(image, updates)), opt_state, metrics

  opt_state = tx.init(image)
  for s in range(steps):
    image, opt_state, metrics = step(image, opt_state, jax.random.fold_in(jax.random.PRNGKey(1), s))
  pixels = np.clip(np.asarray(image["pixels"]), 0.0, 1.0)
  probs = np.asarray(jax.nn.softmax(net.logits(jnp.asarray(pixels)), axis=-1))
  captions = [f"{c}: top {net.class_names[int(p.argmax())]} {p.max():.2f}" for c, p in zip(problem.channels, probs)]
  del metrics
  return [heatmaps.image_grid_figure(pixels, os.path.join(out_dir, f"maximize_{layer.replace('/', '_')}.png"),
                                     f"{net.name}: images maximising {layer} channels (caption: channel, the "
                                     "network's top class and probability)", captions)]
