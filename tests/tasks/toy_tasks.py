"""Test-only task families that prove the one training loop serves more than classifiers.

Importing this module registers
  * `toy_gan`: two networks (an MLP generator and an MLP critic, a weight-clipped WGAN) on unlabelled images;
    `gan.n_critic` critic updates then one generator update, chosen inside the compiled step by `state.step`;
  * `toy_detection`: a tiny grid detector on `digit_scenes` whose padded top-D predictions (with a validity mask)
    are scored by COCO mAP through a `GatherEvaluator`.
Configs live in tests/tasks/configs/ (loaded by path, like configs/*.py).
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

from vision_jax.data.features import DatasetSpec
from vision_jax.evaluation.evaluators import Evaluator, GatherEvaluator, SumEvaluator, coco_detection_metrics
from vision_jax.tasks import base
from vision_jax.train_lib.state import TrainState


# --- toy_gan -----------------------------------------------------------------------------------------------------
class MLPGenerator(nn.Module):
  """Latent [N, L] -> images [N, H, W, C] in [-1, 1]."""

  image_shape: tuple[int, ...]
  hidden: int = 128

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = nn.relu(nn.Dense(self.hidden)(z))
    x = jnp.tanh(nn.Dense(int(np.prod(self.image_shape)))(x))
    return x.reshape((z.shape[0],) + tuple(self.image_shape))


class MLPCritic(nn.Module):
  """Images [N, H, W, C] -> scores [N] (unbounded: a WGAN critic)."""

  hidden: int = 128

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = images.reshape((images.shape[0], -1))
    x = nn.leaky_relu(nn.Dense(self.hidden)(x), 0.2)
    return nn.Dense(1)(x)[:, 0]


@base.register("toy_gan")
class ToyGanTask(base.Task):
  """A weight-clipped WGAN (Arjovsky et al., 2017): critic loss E[D(fake)] - E[D(real)], generator loss
  -E[D(fake)], critic weights clipped to [-gan.clip, gan.clip] after each critic update.

  Config: `gan.latent_dim`, `gan.n_critic` (critic updates per generator update), `gan.clip`, `gan.num_samples`
  (images in samples.png). Images are scaled to [-1, 1] by `input.preprocess` / `input.normalize`.
  """

  best_metric = ("mean_image_distance", "min")
  curve_metrics = ("critic_loss", "generator_loss", "real_score", "fake_score")

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    self.latent_dim = int(config.gan.latent_dim)
    self.n_critic = int(config.gan.n_critic)
    self.clip = float(config.gan.clip)
    self.num_samples = int(config.gan.num_samples)
    self.input_ops = base.InputOps(config.input)
    self.image_shape = self.input_ops.output_shape(spec.image_shape)
    self.generator = MLPGenerator(self.image_shape)
    self.critic = MLPCritic()

  def networks(self) -> dict[str, nn.Module]:
    return {"generator": self.generator, "critic": self.critic}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    if name == "generator":
      return (jnp.zeros((1, self.latent_dim), jnp.float32),)
    return (jnp.zeros((1,) + self.image_shape, jnp.float32),)

  def identity(self) -> dict[str, Any]:
    return {"latent_dim": self.latent_dim}

  def is_critic_step(self, step: jax.Array) -> jax.Array:
    """Whether loop step `step` updates the critic (the first `n_critic` of every `n_critic + 1` steps)."""
    return step % (self.n_critic + 1) < self.n_critic

  def _scores(self, state: TrainState, images: jax.Array, critic_params: Any = None) -> jax.Array:
    params = state.params["critic"] if critic_params is None else critic_params
    return self.critic.apply({"params": params}, images)

  def _generate(self, state: TrainState, z: jax.Array, generator_params: Any = None) -> jax.Array:
    params = state.params["generator"] if generator_params is None else generator_params
    return self.generator.apply({"params": params}, z)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs) -> tuple[TrainState, base.Metrics]:
    """A critic update or a generator update, picked by `state.step` (`jax.lax.cond`, one compiled step).

    Returns:
      (state, {critic_loss, generator_loss, real_score, fake_score, critic_step}) measured before the update;
      `critic_step` is 1 for critic updates, 0 for generator updates.
    """
    rng = state.step_rng()
    real = self.input_ops(jax.random.fold_in(rng, 0), batch["image"], train=True)
    z = jax.random.normal(jax.random.fold_in(rng, 1), (real.shape[0], self.latent_dim))

    def metrics(real_scores, fake_scores, critic_step):
      return {"critic_loss": jnp.mean(fake_scores) - jnp.mean(real_scores), "generator_loss": -jnp.mean(fake_scores),
              "real_score": jnp.mean(real_scores), "fake_score": jnp.mean(fake_scores),
              "critic_step": jnp.float32(critic_step)}

    def critic_update(state):
      fake = self._generate(state, z)

      def loss_fn(params):
        real_scores, fake_scores = self._scores(state, real, params), self._scores(state, fake, params)
        return jnp.mean(fake_scores) - jnp.mean(real_scores), (real_scores, fake_scores)

      grads, (real_scores, fake_scores) = jax.grad(loss_fn, has_aux=True)(state.params["critic"])
      new = state.apply_gradients("critic", grads, txs["critic"])
      clipped = jax.tree.map(lambda p: jnp.clip(p, -self.clip, self.clip), new.params["critic"])
      return new.replace(params={**new.params, "critic": clipped}), metrics(real_scores, fake_scores, 1)

    def generator_update(state):
      def loss_fn(params):
        fake_scores = self._scores(state, self._generate(state, z, params))
        return -jnp.mean(fake_scores), fake_scores

      grads, fake_scores = jax.grad(loss_fn, has_aux=True)(state.params["generator"])
      real_scores = self._scores(state, real)
      return state.apply_gradients("generator", grads, txs["generator"]), metrics(real_scores, fake_scores, 0)

    return jax.lax.cond(self.is_critic_step(state.step), critic_update, generator_update, state)

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Critic scores of the real images and of as many generated ones (fixed latents), pixel sums of both."""
    real = self.input_ops(jax.random.PRNGKey(0), batch["image"], train=False)
    fake = self._generate(state, jax.random.normal(jax.random.PRNGKey(0), (real.shape[0], self.latent_dim)))
    weights = batch["mask"].astype(jnp.float32)
    return {"real_score": jnp.sum(self._scores(state, real) * weights),
            "fake_score": jnp.sum(self._scores(state, fake) * weights),
            "real_pixels": jnp.einsum("n,nhwc->hwc", weights, real),
            "fake_pixels": jnp.einsum("n,nhwc->hwc", weights, fake),
            "count": jnp.sum(weights)}

  def evaluators(self) -> list[Evaluator]:
    return [SumEvaluator(("real_score", "fake_score", "real_pixels", "fake_pixels", "count"), self.reduce_eval)]

  @staticmethod
  def reduce_eval(sums: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Means of the critic scores, and the mean absolute difference between the mean generated and the mean
    real image in [0, 1] pixel units (`mean_image_distance`)."""
    count = float(sums["count"])
    real_score, fake_score = float(sums["real_score"]) / count, float(sums["fake_score"]) / count
    distance = float(np.mean(np.abs(sums["fake_pixels"] - sums["real_pixels"]))) / count / 2
    return {"real_score": real_score, "fake_score": fake_score, "wasserstein_estimate": real_score - fake_score,
            "mean_image_distance": distance, "num_examples": int(round(count))}

  def on_evaluation(self, workdir: str, state: TrainState, step: int, metrics: Mapping[str, Any]) -> list[str]:
    """samples.png: `num_samples` images from the same fixed latents at every evaluation."""
    del step, metrics
    z = jax.random.normal(jax.random.PRNGKey(1), (self.num_samples, self.latent_dim))
    path = os.path.join(workdir, "samples.png")
    Image.fromarray(image_grid(np.asarray(jax.jit(self._generate)(state, z)))).save(path)
    return [path]

  def write_reports(self, workdir: str, metrics: Mapping[str, Any], summary: dict[str, Any]) -> list[str]:
    """Names the last sample grid (written by `on_evaluation`) in summary.json."""
    del metrics
    summary["samples_png"] = os.path.join(workdir, "samples.png")
    return []


def image_grid(images: np.ndarray) -> np.ndarray:
  """[N, H, W, C] images in [-1, 1] -> one uint8 grid image [rows*H, cols*W] (or [..., 3]), 1 px black gaps."""
  images = np.clip((np.asarray(images, np.float32) + 1) * 127.5, 0, 255).round().astype(np.uint8)
  n, h, w, c = images.shape
  cols = int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  grid = np.zeros((rows * (h + 1) - 1, cols * (w + 1) - 1, c), np.uint8)
  for i, image in enumerate(images):
    r, col = divmod(i, cols)
    grid[r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = image
  return grid[..., 0] if c == 1 else grid


# --- toy_detection ----------------------------------------------------------------------------------------------
class GridDetector(nn.Module):
  """Images [N, S, S, C] -> per-cell outputs [N, G*G, 5 + K] on a G = S / 8 grid: box offsets (tx, ty, tw, th),
  objectness, class logits."""

  num_classes: int

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    del train
    x = images
    for features in (16, 32, 32):
      x = nn.relu(nn.Conv(features, (3, 3), strides=2)(x))
    x = nn.Conv(5 + self.num_classes, (1, 1))(x)
    return x.reshape((x.shape[0], -1, x.shape[-1]))


@base.register("toy_detection")
class ToyDetectionTask(base.Task):
  """One box per grid cell (stride 8, one anchor of `detection.anchor` px), YOLO-like: each ground-truth box is
  learned by the cell holding its centre (L1 on the box offsets, cross-entropy on its class); objectness is a
  sigmoid BCE over every cell. Predictions: the `detection.max_detections` best cells by objectness x class
  probability, valid where that score is at least `detection.score_threshold`.
  """

  best_metric = ("AP", "max")
  curve_metrics = ("loss", "AP", "AP50")
  stride = 8

  def __init__(self, config: ml_collections.ConfigDict, spec: DatasetSpec):
    super().__init__(config, spec)
    self.num_classes = spec.features["box_labels"].num_classes
    self.max_detections = int(config.detection.max_detections)
    self.score_threshold = float(config.detection.score_threshold)
    self.anchor = float(config.detection.anchor)
    self.input_ops = base.InputOps(config.input)
    self.input_shape = self.input_ops.output_shape(spec.image_shape)
    self.grid = self.input_shape[0] // self.stride
    self.model = GridDetector(self.num_classes)

  def networks(self) -> dict[str, nn.Module]:
    return {"model": self.model}

  def example_inputs(self, name: str) -> tuple[jax.Array, ...]:
    del name
    return (jnp.zeros((1,) + self.input_shape, jnp.float32),)

  def identity(self) -> dict[str, Any]:
    return {"num_classes": self.num_classes, "max_detections": self.max_detections}

  def _cells(self, boxes: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """[N, M, 4] boxes -> (cell index [N, M], column [N, M], row [N, M]) of each box's centre."""
    cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
    col = jnp.clip(jnp.floor(cx / self.stride), 0, self.grid - 1)
    row = jnp.clip(jnp.floor(cy / self.stride), 0, self.grid - 1)
    return (row * self.grid + col).astype(jnp.int32), col, row

  def losses(self, outputs: jax.Array, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-image losses {loss, box_loss, class_loss, objectness_loss}, each [N]."""
    boxes, labels = batch["boxes"], batch["box_labels"]
    valid = (jnp.arange(boxes.shape[1])[None] < batch["num_objects"][:, None]) & (labels >= 0)
    cells, col, row = self._cells(boxes)
    at_gt = jnp.take_along_axis(outputs, cells[..., None], axis=1)  # [N, M, 5 + K]
    width = jnp.maximum(boxes[..., 2] - boxes[..., 0], 1.0)
    height = jnp.maximum(boxes[..., 3] - boxes[..., 1], 1.0)
    target = jnp.stack([(boxes[..., 0] + boxes[..., 2]) / 2 / self.stride - col,
                        (boxes[..., 1] + boxes[..., 3]) / 2 / self.stride - row,
                        jnp.log(width / self.anchor), jnp.log(height / self.anchor)], -1)
    predicted = jnp.concatenate([jax.nn.sigmoid(at_gt[..., :2]), at_gt[..., 2:4]], -1)
    box_loss = jnp.sum(jnp.abs(predicted - target).sum(-1) * valid, 1)
    log_probs = jax.nn.log_softmax(at_gt[..., 5:])
    class_loss = -jnp.sum(jnp.take_along_axis(log_probs, jnp.maximum(labels, 0)[..., None], -1)[..., 0] * valid, 1)
    occupied = jnp.max(jax.nn.one_hot(cells, outputs.shape[1]) * valid[..., None], axis=1)  # [N, G*G]
    logits = outputs[..., 4]
    objectness = jnp.sum(jnp.maximum(logits, 0) - logits * occupied + jnp.log1p(jnp.exp(-jnp.abs(logits))), 1)
    count = jnp.maximum(jnp.sum(valid, 1), 1)
    parts = {"box_loss": box_loss / count, "class_loss": class_loss / count,
             "objectness_loss": objectness / outputs.shape[1]}
    return {"loss": sum(parts.values()), **parts}

  def predictions(self, outputs: jax.Array) -> dict[str, jax.Array]:
    """Per-cell outputs [N, G*G, 5 + K] -> the top `max_detections` cells: pred_boxes [N, D, 4] (xyxy pixels,
    inside the image), pred_scores [N, D], pred_labels [N, D], pred_valid [N, D]."""
    cells = jnp.arange(outputs.shape[1])
    col, row = (cells % self.grid).astype(jnp.float32), (cells // self.grid).astype(jnp.float32)
    cx = (col + jax.nn.sigmoid(outputs[..., 0])) * self.stride
    cy = (row + jax.nn.sigmoid(outputs[..., 1])) * self.stride
    half_w = self.anchor * jnp.exp(jnp.clip(outputs[..., 2], -4, 4)) / 2
    half_h = self.anchor * jnp.exp(jnp.clip(outputs[..., 3], -4, 4)) / 2
    height, width = self.input_shape[:2]
    boxes = jnp.stack([jnp.clip(cx - half_w, 0, width), jnp.clip(cy - half_h, 0, height),
                       jnp.clip(cx + half_w, 0, width), jnp.clip(cy + half_h, 0, height)], -1)
    probs = jax.nn.softmax(outputs[..., 5:])
    scores = jax.nn.sigmoid(outputs[..., 4]) * jnp.max(probs, -1)
    top_scores, top = jax.lax.top_k(scores, self.max_detections)
    return {"pred_boxes": jnp.take_along_axis(boxes, top[..., None], 1), "pred_scores": top_scores,
            "pred_labels": jnp.take_along_axis(jnp.argmax(probs, -1), top, 1).astype(jnp.int32),
            "pred_valid": top_scores >= self.score_threshold}

  def _outputs(self, params: Any, images: jax.Array, rng: jax.Array, train: bool) -> jax.Array:
    return self.model.apply({"params": params}, self.input_ops(rng, images, train))

  def train_step(self, state: TrainState, batch: dict[str, jax.Array], txs) -> tuple[TrainState, base.Metrics]:
    """One update of "model" on the batch mean of `losses`."""
    rng = state.step_rng()

    def loss_fn(params):
      losses = self.losses(self._outputs(params, batch["image"], rng, True), batch)
      return jnp.mean(losses["loss"]), losses

    grads, losses = jax.grad(loss_fn, has_aux=True)(state.params["model"])
    return state.apply_gradients("model", grads, txs["model"]), {k: jnp.mean(v) for k, v in losses.items()}

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Padded predictions and the ground truth of each image (for COCO mAP), and summed losses."""
    outputs = self._outputs(state.params["model"], batch["image"], jax.random.PRNGKey(0), False)
    weights = batch["mask"].astype(jnp.float32)
    out = self.predictions(outputs)
    out.update({k: batch[k] for k in ("boxes", "box_labels", "num_objects", "mask")})
    out["loss"] = jnp.sum(self.losses(outputs, batch)["loss"] * weights)
    out["count"] = jnp.sum(weights)
    return out

  def evaluators(self) -> list[Evaluator]:
    keys = ("pred_boxes", "pred_scores", "pred_labels", "pred_valid", "boxes", "box_labels", "num_objects")
    return [GatherEvaluator(keys, coco_detection_metrics),
            SumEvaluator(("loss", "count"), lambda t: {"loss": float(t["loss"] / t["count"]),
                                                       "num_examples": int(round(float(t["count"])))})]

  def eval_mode(self, members, runner) -> list[str]:
    """The base `--mode=eval`, with eval.json written by process 0 only (`Task.eval_mode` writes it from every
    process, and two processes replacing the same file race)."""
    if jax.process_index() == 0 or len(members) > 1:
      return super().eval_mode(members, runner)
    runner.evaluate(*members[0])  # the other processes take part in the same collective evaluation
    return []
