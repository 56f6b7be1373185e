"""Classification's `--mode=eval` and `--mode=predict`: per-example class probabilities of one run or an
ensemble of runs, with or without TTA; top-k classes of image files.

An ensemble averages the class probabilities of its members (checkpoints of several seeds, models or recipes
trained on the same dataset). Each member's probabilities are themselves averaged over the test-time views
chosen by its `config.eval` (`vision_jax.evaluation.tta`); one member with `eval.tta="none"` is the plain
evaluation. This is what `python -m vision_jax.main --mode=eval [--ensemble=DIR ...]` runs for classifiers.
The loop's setup functions come in as `runner` (`vision_jax.train_lib.setup`): tasks do not import the loop.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np

from PIL import Image, UnidentifiedImageError

from vision_jax import plots
from vision_jax.data import host_resize
from vision_jax.data.formats import images as image_files
from vision_jax.errors import ConfigError, UserError
from vision_jax.evaluation import classification as cls_metrics
from vision_jax.evaluation import tta
from vision_jax.train_lib import parallel, writers


@dataclasses.dataclass
class EvalResult:
  """What `evaluate` returns.

  Attributes:
    metrics: loss (NLL of the averaged probabilities), accuracy, top5_accuracy (K > 5), macro_f1,
      num_examples, confusion [K, K] and per_class_{precision,recall,f1,support} [K].
    probabilities: [N, K] averaged class probabilities of the eval split, in split order.
    labels: [N] true classes.
    members: one dict per member: workdir, model, step, tta, accuracy.
    setup: the first member's `train.Setup` (eval source, spec and config, for drawing examples).
  """

  metrics: dict[str, Any]
  probabilities: np.ndarray
  labels: np.ndarray
  members: list[dict[str, Any]]
  setup: Any


def split_probabilities(s: Any, state: Any, runner: Any) -> tuple[np.ndarray, np.ndarray]:
  """Class probabilities of every eval example, averaged over the TTA views of `s.config.eval`.

  Returns:
    ([N, K] float32 probabilities, [N] int labels), N the eval split size, in split order.
  """
  cfg = s.config.eval
  height, width = s.eval_spec.image_shape[:2]
  tta.check(cfg.tta, cfg.tta_pad, cfg.tta_crop, height, width)

  def step(state, batch):
    probs = tta.average_probabilities(lambda images: s.task.logits(state, images), batch["image"], cfg.tta,
                                      cfg.tta_pad, cfg.tta_crop)
    return probs, batch["label"], batch["mask"]

  replicated = parallel.replicated(s.mesh)
  step = jax.jit(step, in_shardings=(replicated, parallel.batch_sharded(s.mesh)), out_shardings=replicated)
  probs, labels = [], []
  for batch in runner.eval_batches(s):
    p, y, mask = jax.device_get(step(state, batch))
    probs.append(p[mask])
    labels.append(y[mask])
  return np.concatenate(probs), np.concatenate(labels)


def metrics_from_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
  """Classification metrics of predicted probabilities (the keys of `ClassificationTask.reduce_eval`).

  Args:
    probabilities: [N, K] class probabilities.
    labels: [N] true classes.

  Returns:
    loss (mean negative log-probability of the true class), accuracy, top5_accuracy (only when K > 5),
    macro_f1, num_examples, confusion [K, K] (rows true) and per_class_{precision,recall,f1,support} [K].
  """
  probabilities = np.asarray(probabilities, np.float64)
  n, k = probabilities.shape
  order = np.argsort(-probabilities, axis=-1, kind="stable")  # ties go to the lower class, as argmax does
  predicted = order[:, 0]
  true_prob = probabilities[np.arange(n), labels]
  metrics = {"loss": float(np.mean(-np.log(np.maximum(true_prob, np.finfo(np.float32).tiny)))),
             "accuracy": float(np.mean(predicted == labels))}
  if k > 5:
    metrics["top5_accuracy"] = float(np.mean(np.any(order[:, :5] == labels[:, None], axis=-1)))
  confusion = np.zeros((k, k), np.int64)
  np.add.at(confusion, (labels, predicted), 1)
  per_class = cls_metrics.precision_recall_f1(confusion)
  metrics.update(num_examples=n, confusion=confusion, macro_f1=float(np.mean(per_class["f1"])))
  metrics.update({f"per_class_{key}": value for key, value in per_class.items()})
  return metrics


def evaluate(members: Sequence[tuple[ml_collections.ConfigDict, str]], runner: Any) -> EvalResult:
  """Evaluates the average of the members' class probabilities on the eval split.

  Args:
    members: (config, workdir) pairs; each member's best (else newest) checkpoint is restored with its own
      config (model, preprocessing, `eval.tta`). All must evaluate the same examples in the same order.

  Raises:
    ConfigError: no members, a workdir without a checkpoint, or members evaluating different data.
  """
  if not members:
    raise ConfigError("an evaluation needs at least one run directory")
  total, labels, first, described = None, None, None, []
  for config, workdir in members:
    s = runner.setup(config, workdir)
    state = runner.restore_for_eval(s, workdir)
    probs, member_labels = split_probabilities(s, state, runner)
    if first is None:
      first, labels, total = s, member_labels, np.zeros_like(probs, np.float64)
    elif probs.shape != total.shape or not np.array_equal(member_labels, labels):
      raise ConfigError(f"ensemble member {workdir} evaluates {probs.shape[0]} examples of {probs.shape[1]} "
                        f"classes unlike {members[0][1]} ({total.shape[0]} of {total.shape[1]}) or in another "
                        "order; ensemble runs of the same dataset and eval split")
    total += probs
    described.append({"workdir": workdir, "model": config.model.name, "step": int(state.step),
                      "tta": config.eval.tta, "accuracy": float(np.mean(np.argmax(probs, -1) == labels))})
  average = (total / len(members)).astype(np.float32)
  return EvalResult(metrics_from_probabilities(average, labels), average, labels, described, first)


def _stored_images(s: Any, indices: np.ndarray) -> np.ndarray:
  """Eval-split images at `indices` as the pipeline feeds them (host resize included), [M, H, W, C]."""
  images = [np.asarray(s.eval_source[int(i)][s.eval_spec.image_key]) for i in indices]
  if s.config.input.image_size:
    images = [host_resize.resize_and_center_crop(image, s.config.input.image_size) for image in images]
  images = np.stack(images)
  return images[..., None] if images.ndim == 3 else images


def most_confident_mistakes(result: EvalResult, count: int) -> np.ndarray:
  """Indices of up to `count` misclassified examples, highest predicted probability first."""
  predicted = np.argmax(result.probabilities, -1)
  wrong = np.flatnonzero(predicted != result.labels)
  confidence = result.probabilities[wrong, predicted[wrong]]
  return wrong[np.argsort(-confidence, kind="stable")[:count]]


def write_outputs(result: EvalResult, directory: str) -> list[str]:
  """Writes eval.json (metrics, per-class table, members) and misclassified.png into `directory`.

  Returns:
    The paths written.
  """
  s = result.setup
  names = s.eval_spec.class_names
  os.makedirs(directory, exist_ok=True)
  report = {"metrics": {k: v for k, v in result.metrics.items() if np.ndim(v) == 0},
            "per_class": cls_metrics.per_class_report(result.metrics, names),
            "confusion": result.metrics["confusion"].tolist(), "members": result.members}
  paths = [os.path.join(directory, "eval.json")]
  if jax.process_index() != 0:  # every process has the results; one writes them
    return paths
  writers.write_json(paths[0], report)
  indices = most_confident_mistakes(result, s.config.eval.misclassified)
  if len(indices):
    predicted = np.argmax(result.probabilities[indices], -1)
    paths.append(os.path.join(directory, "misclassified.png"))
    plots.plot_misclassified(_stored_images(s, indices), [names[i] for i in result.labels[indices]],
                             [names[i] for i in predicted], paths[-1],
                             confidences=result.probabilities[indices, predicted])
  return paths


def eval_mode(members: Sequence[tuple[ml_collections.ConfigDict, str]], runner: Any) -> list[str]:
  """`--mode=eval` of classifiers: evaluates (the ensemble of) `members`, writes eval.json and
  misclassified.png into the first member's workdir, and returns the lines to print."""
  result = evaluate(members, runner)
  metrics = result.metrics
  shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if np.ndim(v) == 0 and k != "num_examples")
  lines = [f"{m['workdir']} (step {m['step']}, tta {m['tta']}): accuracy {m['accuracy']:.4f}" for m in result.members]
  what = f"ensemble of {len(members)} runs" if len(members) > 1 else f"eval of step {result.members[0]['step']}"
  lines.append(cls_metrics.format_per_class(cls_metrics.per_class_report(metrics, result.setup.eval_spec.class_names)))
  lines.append(f"{what} on {metrics['num_examples']} examples: {shown}")
  lines.append(f"wrote {', '.join(write_outputs(result, members[0][1]))}")
  return lines


def read_image(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
  """Reads an image file as uint8 [H, W, C] in the dataset's stored shape.

  Grayscale files give C=1, colour files C=3 (an alpha channel is dropped); 16-bit and float pixels are
  converted as `data.formats.images.eight_bit` does. Images of another size are resized (bilinear) to the
  dataset's H x W.

  Raises:
    UserError: unreadable file, or channels that differ from the model's.
  """
  height, width, channels = image_shape
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_pixel_count refuses them instead
      image = Image.open(path)
    with image:
      image_files.check_pixel_count(image, path)
      image.load()
      image = image_files.eight_bit(image, path)  # 16-bit and float pixels converted faithfully, or refused
      mode = image.mode
      if mode in ("RGBA", "P", "CMYK", "YCbCr"):
        image = image.convert("RGB")
      elif mode in ("LA", "1"):
        image = image.convert("L")
      if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
      array = np.asarray(image, dtype=np.uint8)
  except FileNotFoundError:
    raise UserError(f"cannot read {path}: no such file; pass existing PNG/JPEG files") from None
  except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
    raise UserError(f"cannot read {path} as an image ({type(e).__name__}); pass PNG or JPEG files") from None
  if array.ndim == 2:
    array = array[:, :, None]
  if array.shape[-1] != channels:
    fix = "convert it to grayscale" if channels == 1 else "convert it to RGB"
    raise UserError(f"{path} has {array.shape[-1]} channel(s) but the model expects {channels}; {fix} first")
  return array


def top_k_lines(task: Any, state: Any, inputs: np.ndarray, paths: Sequence[str]) -> list[str]:
  """"path: class p, class p, ..." for the top `config.predict.top_k` classes of each stored-format input."""
  probs = np.asarray(jax.nn.softmax(jax.jit(task.logits)(state, inputs), axis=-1))
  k = min(task.config.predict.top_k, probs.shape[-1])
  names = task.spec.class_names
  lines = []
  for path, p in zip(paths, probs):
    top = np.argsort(-p, kind="stable")[:k]
    lines.append(f"{path}: " + ", ".join(f"{names[i]} {float(p[i]):.3f}" for i in top))
  return lines


def predict_lines(task: Any, state: Any, paths: Sequence[str]) -> list[str]:
  """Top-k classes of image files (PNG/JPEG/...), read in the dataset's stored shape."""
  images = np.stack([read_image(p, tuple(task.spec.image_shape)) for p in paths])
  return top_k_lines(task, state, images, paths)
