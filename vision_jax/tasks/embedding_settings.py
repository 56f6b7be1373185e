"""Settings of the embedding task (`config.embedding`, described in `vision_jax.tasks.embedding`): the names it
accepts and the checks that turn an impossible combination into a one-line ConfigError before anything is built."""

from __future__ import annotations

import ml_collections

from vision_jax.errors import ConfigError
from vision_jax.losses import metric as metric_losses
from vision_jax.models import embedding as embedding_models

LOSSES = ("contrastive", "batch_all", "batch_hard", "semi_hard", "soft_margin", "prototypical", "nt_xent", "supcon",
          "pair_bce")
PAIR_LOSSES = ("pair_bce",)  # need the pairs sampler
VIEW_LOSSES = ("nt_xent", "supcon")  # need two augmented views of every image
# losses whose every term needs another image of the anchor's class in the batch (NT-Xent and SupCon pair views)
POSITIVE_LOSSES = ("contrastive", "batch_all", "batch_hard", "semi_hard", "soft_margin", "prototypical")
EVAL_FEATURES = {"head": "", "backbone": "last", "conv": "first"}  # -> EmbeddingNet.features(layer=...)


def check_settings(section: ml_collections.ConfigDict, model_name: str, sampler: str,
                   examples_per_class: int = 2, classes_repeat: bool = False) -> None:
  """Raises a one-line ConfigError for an unknown loss or metric, a bad size, a wrapped model or a sampler that
  does not give the loss its batches (`examples_per_class`: the K of P x K batches, `input.examples_per_class`;
  `classes_repeat`: a batch's P class groups outnumber the training classes, so the sampler repeats classes)."""
  if section.loss not in LOSSES:
    raise ConfigError(f"embedding.loss={section.loss!r} is unknown; use one of {', '.join(LOSSES)}")
  if section.metric not in metric_losses.METRICS:
    raise ConfigError(f"embedding.metric={section.metric!r} is unknown; use one of "
                      f"{', '.join(metric_losses.METRICS)}")
  if section.embed_dim < 1:
    raise ConfigError(f"embedding.embed_dim={section.embed_dim} must be at least 1")
  if not float(section.margin) >= 0 or not float(section.scale) > 0:  # NaN too
    raise ConfigError(f"embedding.margin={section.margin} must be >= 0 and embedding.scale={section.scale} (the "
                      "prototypical logits' -scale x distance) > 0")
  if not float(section.feature_power) > 0:  # NaN too
    raise ConfigError(f"embedding.feature_power={section.feature_power} must be > 0 (1: features as they are, 0.5: "
                      "square roots)")
  if float(section.feature_power) != 1.0 and section.loss in PAIR_LOSSES:
    raise ConfigError(f"embedding.feature_power={section.feature_power}: the pair classifier's head scores its "
                      "embeddings as they are; leave feature_power at 1")
  if model_name in embedding_models.WRAPPERS:
    raise ConfigError(f"model.name={model_name!r} is already a Siamese wrapper; task 'embedding' wraps the backbone "
                      "itself: set model.name to a zoo classifier such as lenet5_relu or simple_cnn")
  if int(section.class_transforms) not in (0, 4, 8):
    raise ConfigError(f"embedding.class_transforms={section.class_transforms}; use 0 (off), 4 (turns) or 8 (turns "
                      "and mirror images)")
  if int(section.class_transforms) and sampler != "balanced":
    raise ConfigError("embedding.class_transforms turns each class group of a P x K batch; set "
                      "input.sampler=balanced (input.examples_per_class=K)")
  if section.loss in PAIR_LOSSES and sampler != "pairs":
    raise ConfigError(f"embedding.loss={section.loss} trains on pairs; set input.sampler=pairs")
  if section.loss == "prototypical" and sampler != "balanced":
    raise ConfigError("embedding.loss=prototypical makes its episodes from the class groups of P x K batches; set "
                      "input.sampler=balanced (input.examples_per_class=K)")
  if section.eval_metric and section.eval_metric not in metric_losses.METRICS:
    raise ConfigError(f"embedding.eval_metric={section.eval_metric!r} is unknown; use one of "
                      f"{', '.join(metric_losses.METRICS)} or '' (the training metric)")
  if any(name not in EVAL_FEATURES for name in str(section.eval_features).split("+")):
    raise ConfigError(f"embedding.eval_features={section.eval_features!r}; use head (the embedding), backbone (the "
                      "input of the backbone's last linear layer) or conv (the input of its first), or several joined "
                      "by + (e.g. conv+backbone)")
  if section.eval_features != "head" and section.loss in PAIR_LOSSES:
    raise ConfigError(f"embedding.eval_features={section.eval_features} is for embedding networks; the pair "
                      "classifier scores its embeddings: use eval_features=head")
  if float(section.temperature) <= 0 or float(section.instance_weight) < 0:
    raise ConfigError(f"embedding.temperature={section.temperature} must be > 0 and embedding.instance_weight="
                      f"{section.instance_weight} >= 0")
  if uses_views(section) and sampler == "pairs":
    raise ConfigError("embedding.loss=nt_xent/supcon and embedding.instance_weight > 0 make two views of every image "
                      "of a batch; set input.sampler=balanced or uniform")
  if int(section.glyphs) < 0 or int(section.glyph_pool) < 0 or float(section.glyph_jitter) < 0:
    raise ConfigError(f"embedding.glyphs={section.glyphs}, glyph_pool={section.glyph_pool} and glyph_jitter="
                      f"{section.glyph_jitter} must be >= 0")
  if int(section.glyphs) and (sampler != "balanced" or section.loss in PAIR_LOSSES):
    raise ConfigError("embedding.glyphs adds synthetic class groups of K to P x K batches; set input.sampler=balanced "
                      "and a loss other than pair_bce")
  if 0 < int(section.glyph_pool) < int(section.glyphs):
    raise ConfigError(f"embedding.glyph_pool={section.glyph_pool} is smaller than the {section.glyphs} glyph classes "
                      "of a batch; raise it or set 0 (fresh classes every step)")
  if int(section.glyphs) and int(section.glyph_strokes) < 1:
    raise ConfigError(f"embedding.glyph_strokes={section.glyph_strokes} must be at least 1")
  if section.loss in POSITIVE_LOSSES and sampler == "balanced" and examples_per_class < 2 and not classes_repeat:
    raise ConfigError(f"embedding.loss={section.loss} needs same-class pairs inside a batch, and P x K batches with "
                      f"input.examples_per_class={examples_per_class} hold one image of each class they draw; set it "
                      "to 2 or more")
  if section.loss not in ("contrastive",) + PAIR_LOSSES and sampler not in ("balanced", "uniform"):
    raise ConfigError(f"embedding.loss={section.loss} mines triplets inside P x K batches; set "
                      "input.sampler=balanced (input.examples_per_class=K)")


def uses_views(section: ml_collections.ConfigDict) -> bool:
  """Whether training runs two augmented views of every image (NT-Xent, SupCon, or an added instance term)."""
  return section.loss in VIEW_LOSSES or float(section.instance_weight) > 0
