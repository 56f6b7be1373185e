"""Siamese embeddings on the embedded digits or Fashion-MNIST: train on classes 0-4, evaluate on held-out 5-9.

    python -m vision_jax.main --config=configs/siamese_digits.py:loss=batch_hard --workdir=runs/siamese_bh
    python -m vision_jax.main --config=configs/siamese_digits.py:loss=contrastive,dataset=fashion --workdir=runs/x
    python -m vision_jax.main --config=configs/siamese_digits.py:smoke                               # seconds

Arguments (`:key=value,...`): loss (contrastive | batch_all | batch_hard | semi_hard | soft_margin | prototypical |
nt_xent | supcon | pair_bce), dataset (digits | fashion), model (any zoo classifier as the backbone, or conv4;
default simple_cnn), head (conv4 only: false uses its flattened 64-d features as the embedding, no linear head;
embed is then unused), blocks (conv4's conv blocks: 4 gives 64-d features at 28x28, 3 gives 3x3x64 = 576-d), center
(`embedding.center`: standardise the embedding with the training images' running statistics), bn (batch norm in the
backbone, `model.batch_norm=on`; the training split holds no held-out image, so its statistics never see one),
transforms (`embedding.class_transforms`: 8 turns the training classes into 40 by quarter turns and mirror images, 0
keeps the 5 classes, the default), steps, batch (0: 20 class groups of k for P x K batches, 128 pairs for pair_bce),
k (examples per class of a P x K batch), margin (0: the loss's default, 0.2 for triplets, 1.0 for contrastive),
embed, normalize (L2-normalised embeddings), metric (euclidean | squared_euclidean | cosine: training distance and
evaluation score), scale (prototypical logits -scale * distance), augment (crop: 2-pixel pad and crop | affine
(default): small rotation, shear, zoom and shift | strong: stroke thickness, elastic distortion, affine and cutout,
the views of instance discrimination | none), features (`embedding.eval_features`: head evaluates the embedding,
backbone the representation below the embedding head, conv (default) the flattened conv maps), eval_metric (the
evaluation distance, '' for metric's), temperature (nt_xent / supcon), instance (`embedding.instance_weight`: adds
that weight x NT-Xent of two views to the loss), glyphs (`embedding.glyphs`: N procedurally generated
handwriting-like classes x k examples added to every batch, 0: off), pool (`embedding.glyph_pool`: 0 fresh glyph
classes every step, M a fixed family of M), jitter (`embedding.glyph_jitter`), strokes (`embedding.glyph_strokes`),
lr, seed, smoke, match (`embedding.match`: prototype, or local: conv maps matched location by location within
+-radius cells), radius, refine (`embedding.refine_steps`: > 0 adds transductive soft k-means episode metrics,
`_transductive`: the episode's unlabelled queries refine the prototypes, of the evaluated features or, with
match=local, of the conv maps, hole prior included), shape (moment-based shape normalisation of every training and
evaluation image, added to `input.preprocess`: deskew removes each image's slant and centres its ink; moments also
scales both axes to the same ink spread, `vision_jax.data.augment.deform.moment_maps`; '' none, the default), spread
(shape=moments only: that ink spread, the standard deviation of the ink along each axis as a fraction of the
image side; 0 keeps `moment_norm`'s 0.16; the digits recipe takes 0.22, session 48), holes
(`embedding.holes`: episode and gallery scores lose that weight x the L1 distance of the images' hole descriptors, a
topological prior of line drawings, `vision_jax.evaluation.hole_prior`; 0: off), hole_descriptor
(`embedding.hole_descriptor`: binary, a loop in the top / bottom half or not; graded, the fraction of 5 ink thresholds
x 3 minimum hole areas under which it is one), views (`embedding.support_views`: V > 1
scores episodes and the gallery against V views of each support, as it is and V - 1 draws of the training augmentation,
pooled like extra shots under match=local; inductive; 1: off), power (`embedding.feature_power`: every evaluated
feature x becomes sign(x) |x|^power before it is compared, Tukey's power transform; 1: off), widths (simple_cnn only:
the channels of its two conv pairs as A-B, e.g. 64-128; '' keeps 32-64), hidden (simple_cnn only: its dense layer's
units, the backbone features; 0 keeps 512). features takes several layers joined by + (conv+backbone: each
L2-normalised, then concatenated).
Evaluation and checkpoints at half and all steps.
Defaults (session 26): simple_cnn + batch norm, batch_all on P x K = 20 x 5, 64-d L2-normalised embeddings, affine
augmentation, no rotated classes, evaluation on the flattened conv maps (features=conv), which scored about 10
points of held-out 5-way 1-shot accuracy above the embedding itself in the diagnostics.
Best held-out 5-way 1-shot so far (seed 0, 1,000 episodes; targets 95% / 75% missed): digits 93.1% (session 48) with
`loss=supcon,steps=800,eval_metric=cosine,glyphs=20,features=backbone,shape=moments,spread=0.22,holes=0.15,`
`hole_descriptor=graded` (369 s on 2 cores; with steps=500,lr=0.003 92.95% in 204 s, session 61; 92.2% at the
default spread 0.16, session 42; 91.4% with the binary hole prior at holes=0.1, 88.4% without the hole prior, 84.6%
without shape normalisation either); Fashion-MNIST 73.2% (session 34) with
`loss=semi_hard,dataset=fashion,steps=400,eval_metric=cosine,match=local,radius=0,views=32,power=0.5` (125 s; 72.8%
without the power transform; batch_all 72.3%; 69.7% / 69.3% for batch_all / semi_hard without the support views;
glyphs, filled-silhouette classes, shape normalisation and the hole prior do not help garments; trained on all ten
classes, held-out ones included, the recipe scores 77.5%). Transductive, reported apart (`refine=3`): digits 96.5%
(95.9% at spread 0.16, 95.5% with the binary prior), Fashion 76.2% from the same two runs (batch_all 76.4%). README
has the four-loss table.

Held-out classes: the training split keeps classes 0-4 (`dataset.classes`) and the evaluation split the held-out
classes 5-9 (`dataset.eval_classes`, relabelled 0-4; `vision_jax.data.subsets`), so no held-out image reaches
training at all. Training batches: the triplet and contrastive losses use the balanced sampler (P x K); pair_bce uses
the pairs sampler (half of the pairs same-class) only for pair_bce; contrastive takes every pair of a P x K batch.
"""

from vision_jax.configs import common
from vision_jax.data.augment import deform
from vision_jax.errors import ConfigError
from vision_jax.tasks.embedding import defaults

AUGMENTS = {"crop": "pad_crop(pad=2)", "none": "",
            "affine": "affine(degrees=12, translate=(0.08, 0.08), scale=(0.85, 1.1), shear=(12, 0))",
            # SimCLR-style views that keep a digit a digit (stroke, elastic: `vision_jax.data.augment.deform`)
            "strong": "stroke(p=0.6)|elastic(alpha=8, sigma=3, p=0.5)|affine(degrees=15, translate=(0.1, 0.1), "
                      "scale=(0.8, 1.2), shear=(15, 15))|cutout(size=8, p=0.5)"}
FEATURES = ("head", "backbone", "conv")
SHAPE_NORMS = {"deskew": "deskew", "moments": "moment_norm(spread={spread}, max_stretch=2.0)"}
DEFAULT_SPREAD = deform.MOMENT_SPREAD  # what spread=0 keeps
DATASETS = {"digits": ("mnist_embedded", "normalize(mean=0.1307, std=0.3081)"),
            "fashion": ("fashion_mnist_embedded", "normalize(mean=0.286, std=0.353)")}
PAIR_LOSSES = ("pair_bce",)
TRAIN_CLASSES, HELD_OUT_CLASSES = "0,1,2,3,4", "5,6,7,8,9"


def embedding_config(args, dataset: str, eval_every: int, best_metric: str, splits: tuple[str, str] = ("train", "test"),
                     image_size: int = 0):
  """The settings the family's configs share, from their parsed `args` (loss, model, steps, batch, k, margin, embed,
  lr, seed): task, model, dataset and its (train, eval) splits, host resize to `image_size` (0: none), sampler
  (pairs for pair losses, else P x K), Adam with warm-up + cosine, evaluation and checkpoints every `eval_every`
  steps, the `embedding` section, the kept-best metric."""
  if args.steps < 1:
    raise ConfigError(f"steps={args.steps} trains nothing; pass steps=1 or more (e.g. steps=400)")
  if args.k < 1:
    raise ConfigError(f"k={args.k} examples per class; pass k=2 or more (the mining losses need same-class pairs)")
  config = common.base_config()
  config.task = "embedding"
  config.seed = args.seed
  config.model.name = args.model
  config.dataset.name = dataset
  config.dataset.train_split, config.dataset.eval_split = splits
  config.input.image_size = image_size
  config.num_train_steps = args.steps
  config.input.sampler = "pairs" if args.loss in PAIR_LOSSES else "balanced"
  config.input.examples_per_class = args.k
  config.input.batch_size = args.batch
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = min(1000, args.steps // 10)
  config.eval_every_steps = config.checkpoint.every_steps = eval_every
  config.embedding = defaults()
  config.embedding.loss = args.loss
  config.embedding.margin = args.margin or (1.0 if args.loss == "contrastive" else 0.2)
  config.embedding.embed_dim = args.embed
  config.embedding.best_metric = config.checkpoint.best_metric = best_metric
  return config


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, loss="batch_all", dataset="digits", model="simple_cnn", bn=True, transforms=0,
                          steps=400, batch=0, k=5, margin=0.0, embed=64, normalize=True, metric="euclidean",
                          scale=1.0, augment="affine", head=True, blocks=4, center=False, lr=1e-3, seed=0, smoke=False,
                          features="conv", eval_metric="", temperature=0.2, instance=0.0, glyphs=0, pool=0,
                          jitter=0.06, strokes=4, match="prototype", radius=1, refine=0, shape="", holes=0.0,
                          hole_descriptor="binary", views=1, power=1.0, widths="", hidden=0, spread=0.0)
  if args.dataset not in DATASETS:
    raise ConfigError(f"dataset={args.dataset!r}; use one of {', '.join(DATASETS)}")
  if args.augment not in AUGMENTS:
    raise ConfigError(f"augment={args.augment!r}; use one of {', '.join(AUGMENTS)}")
  if args.shape and args.shape not in SHAPE_NORMS:
    raise ConfigError(f"shape={args.shape!r}; use one of {', '.join(SHAPE_NORMS)}, or leave it empty for none")
  if args.spread and args.shape != "moments":
    raise ConfigError(f"spread={args.spread} sets the ink spread of shape=moments; add shape=moments or drop spread")
  if args.spread < 0:
    raise ConfigError(f"spread={args.spread}; pass the ink's spread as a fraction of the image side "
                      f"(e.g. spread=0.22), or 0 for the default {DEFAULT_SPREAD}")
  if any(name not in FEATURES for name in args.features.split("+")):
    raise ConfigError(f"features={args.features!r}; use one of {', '.join(FEATURES)} or several joined by + (e.g. "
                      "conv+backbone)")
  if not args.head and args.model != "conv4":
    raise ConfigError(f"head=false drops conv4's linear head; model={args.model} always has one: use model=conv4")
  pairs = args.loss in PAIR_LOSSES
  args.batch = args.batch or (128 if pairs else 20 * args.k)
  config = embedding_config(args, DATASETS[args.dataset][0], max(1, args.steps // 2), "episodes_5way_1shot")
  config.schedule.warmup_steps = min(100, args.steps // 10)
  config.input.eval_batch_size = 500
  config.input.augment = AUGMENTS[args.augment]
  if args.shape:  # moment-based shape normalisation of every image, training and evaluation
    config.input.preprocess += "|" + SHAPE_NORMS[args.shape].format(spread=args.spread or DEFAULT_SPREAD)
  config.input.normalize = DATASETS[args.dataset][1]
  config.log_every_steps = 100
  config.model.batch_norm = "on" if args.bn else ""
  config.embedding.normalize = args.normalize
  config.embedding.metric, config.embedding.scale, config.embedding.center = args.metric, args.scale, args.center
  config.embedding.temperature, config.embedding.eval_metric = args.temperature, args.eval_metric
  config.embedding.eval_features = "head" if pairs else args.features  # the pair classifier scores its embedding
  config.embedding.instance_weight = args.instance
  config.embedding.match, config.embedding.radius, config.embedding.refine_steps = args.match, args.radius, args.refine
  config.embedding.holes, config.embedding.support_views = args.holes, args.views
  config.embedding.hole_descriptor = args.hole_descriptor
  config.embedding.feature_power = args.power
  config.embedding.glyphs, config.embedding.glyph_pool = args.glyphs, args.pool
  config.embedding.glyph_jitter, config.embedding.glyph_strokes = args.jitter, args.strokes
  if args.model == "conv4":
    config.model.kwargs.head = args.head
    config.model.kwargs.widths = (64,) * args.blocks
  config.model.kwargs.update(simple_cnn_sizes(args.model, args.widths, args.hidden))
  config.embedding.class_transforms = 0 if pairs else args.transforms
  config.dataset.classes, config.dataset.eval_classes = TRAIN_CLASSES, HELD_OUT_CLASSES
  config.embedding.episodes = "5x1,5x5"  # five held-out classes: no 20-way episodes
  if args.smoke:
    shrink_for_smoke(config, 32, 100)
    config.input.examples_per_class = min(args.k, 4)
  return config


def simple_cnn_sizes(model: str, widths: str, hidden: int) -> dict:
  """`simple_cnn`'s constructor sizes from the `widths` ("A-B": channels of its two conv pairs; '' keeps 32-64) and
  `hidden` (units of its dense layer; 0 keeps 512) arguments; a one-line ConfigError for another model or a
  malformed value."""
  if not widths and not hidden:
    return {}
  if model != "simple_cnn":
    raise ConfigError(f"widths={widths!r} / hidden={hidden} size simple_cnn's layers; model={model} has other "
                      "sizes: drop them or use model=simple_cnn")
  sizes = {}
  if widths:
    sizes["widths"] = common.parse_sizes("widths", widths, "the channels of simple_cnn's two conv pairs", "64-128", 2)
  if hidden:
    if hidden < 1:
      raise ConfigError(f"hidden={hidden} dense units; use a positive count (e.g. 256) or 0 for simple_cnn's 512")
    sizes["hidden_units"] = hidden
  return sizes


def shrink_for_smoke(config, batch_size: int, num_episodes: int):
  """`common.apply_smoke` with a batch of `batch_size`, `num_episodes` episodes per setting and a 2-step warm-up."""
  common.apply_smoke(config)
  config.input.batch_size = batch_size
  config.embedding.num_episodes = num_episodes
  config.schedule.warmup_steps = 2
  return config
