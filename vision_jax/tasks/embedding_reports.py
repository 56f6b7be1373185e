"""The pictures of a metric-learning run (`EmbeddingTask.write_reports`): embedding_pca.png, hardest_pairs.png,
verification_roc.png, episodes.png, episode_confusion.png and, with their options, glyphs.png and support_views.png."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from vision_jax.data import synthetic_glyphs
from vision_jax.evaluation import embedding as embedding_eval
from vision_jax.plots import charts, heatmaps
from vision_jax.plots import embedding as embedding_plots

if TYPE_CHECKING:  # the task module imports this one when it writes its reports
  from vision_jax.tasks.embedding import EmbeddingTask


def write_reports(task: "EmbeddingTask", workdir: str, metrics: Mapping[str, Any],
                  summary: dict[str, Any]) -> list[str]:
  """embedding_pca.png, hardest_pairs.png, verification_roc.png, episodes.png and episode_confusion.png of the last
  evaluation (the confusion counts also in `summary["episode_confusion"]`); glyphs.png with synthetic classes."""
  paths, names = [], task.eval_class_names()
  if int(task.settings.glyphs):
    paths.append(os.path.join(workdir, "glyphs.png"))
    sheet = synthetic_glyphs.glyph_sheet(jax.random.PRNGKey(int(task.config.seed) + 7919), 12, 10, task.glyph_style)
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.NEAREST).save(paths[-1])
  if "pca_points" in metrics:
    paths.append(os.path.join(workdir, "embedding_pca.png"))
    embedding_plots.plot_embedding_pca(metrics["pca_points"], metrics["pca_labels"], names, paths[-1])
  if "picture_thumbs" in metrics and task.eval_settings.support_views > 1:
    paths.append(os.path.join(workdir, "support_views.png"))
    plot_support_views(task, metrics["picture_thumbs"], metrics["pca_labels"], names, paths[-1])
  paths += verification_and_episode_pictures(task.eval_settings, workdir, metrics, summary, names)
  if "picture_thumbs" in metrics and len(metrics.get("hard_positive_pairs", ())):
    paths.append(os.path.join(workdir, "hardest_pairs.png"))
    embedding_plots.plot_hardest_pairs(metrics["picture_thumbs"], metrics["pca_labels"],
                                       metrics["hard_positive_pairs"], metrics["hard_positive_scores"],
                                       metrics["hard_negative_pairs"], metrics["hard_negative_scores"], names,
                                       paths[-1])
  return paths


def verification_and_episode_pictures(settings: embedding_eval.EmbeddingEval, workdir: str,
                                       metrics: Mapping[str, Any], summary: dict[str, Any],
                                       names: Sequence[str]) -> list[str]:
  """verification_roc.png; for the first episode setting episodes.png (three episodes, one query per class) and
  episode_confusion.png (true class against the class given, over every episode; up to 30 classes), its counts in
  the summary."""
  paths = []
  far_name = embedding_eval.far_metric_name(settings.far)
  if "roc_tar" in metrics and np.isfinite(metrics["roc_tar"]).all():
    paths.append(os.path.join(workdir, "verification_roc.png"))
    threshold_far, threshold_tar = (float(v) for v in metrics["roc_threshold_point"])
    embedding_plots.plot_roc(metrics["roc_far"], metrics["roc_tar"], paths[-1], float(metrics["verification_auc"]),
                             settings.far, float(metrics[far_name]),
                             (threshold_far, threshold_tar) if threshold_far > 0 else None)  # off a log axis at 0
  if "episode_setting" not in metrics:
    return paths
  ways, shots = (int(v) for v in metrics["episode_setting"])
  setting = f"episodes_{ways}way_{shots}shot"
  if "episode_support_thumbs" in metrics:
    paths.append(os.path.join(workdir, "episodes.png"))
    embedding_plots.plot_episodes(metrics["episode_support_thumbs"], metrics["episode_query_thumbs"],
                                  metrics["episode_support_labels"], metrics["episode_query_labels"],
                                  metrics["episode_query_given"], names, paths[-1],
                                  f"{ways}-way {shots}-shot episodes (first support shown; mean accuracy over all "
                                  f"episodes {float(metrics[setting]):.4f})")
  if "episode_confusion" in metrics:  # up to evaluation.embedding.CONFUSION_CLASSES classes
    classes = [int(c) for c in metrics["evaluated_classes"]]
    class_names = [embedding_plots.class_name(c, names) for c in classes]
    paths.append(os.path.join(workdir, "episode_confusion.png"))
    charts.plot_confusion_matrix(metrics["episode_confusion"], class_names, paths[-1])
    summary["episode_confusion"] = {"setting": setting, "classes": class_names,
                                    "counts": np.asarray(metrics["episode_confusion"]).tolist()}
  return paths


def plot_support_views(task: "EmbeddingTask", thumbs: np.ndarray, labels: np.ndarray, names: Sequence[str], path: str,
                       classes: int = 6, views: int = 8) -> None:
  """support_views.png: one picture image of each of the first `classes` classes (rows) as it is and in its first
  `views` - 1 augmented support views (`view_images` of the thumbnail, so of its size)."""
  labels = np.asarray(labels).reshape(-1)
  chosen = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)[:classes]]
  images = jnp.asarray(np.asarray(thumbs)[chosen])
  count = min(views, task.eval_settings.support_views)
  grid = [jax.jit(task.input_ops.preprocess)(jax.random.PRNGKey(0), images)]
  grid += [jax.jit(task.view_images, static_argnums=1)(images, v) for v in range(1, count)]
  grid = np.stack([np.asarray(g, np.float32) for g in grid], 1)  # [rows, count, h, w, C]
  grid = np.clip(grid / np.maximum(grid.max(axis=(2, 3, 4), keepdims=True), 1e-6), 0.0, 1.0)
  captions = [embedding_plots.class_name(int(labels[i]), names) if v == 0 else f"view {v}"
              for i in chosen for v in range(count)]
  heatmaps.image_grid_figure(grid.reshape((-1,) + grid.shape[2:]), path, "support views: each row an enrolled "
                             "image as it is, then its augmented views (queries are scored as they are)", captions,
                             columns=count)
