"""Siamese embeddings on Labeled Faces in the Wild (TFDS `lfw`): verification of face pairs and one-shot
recognition of people.

    tfds build lfw --file_format=array_record            # once (needs tensorflow for that step only)
    python -m vision_jax.main --config=configs/siamese_lfw.py --workdir=runs/lfw

Arguments (`:key=value,...`): loss (batch_all by default), model (backbone, default resnet18_cifar), size (faces
are centre-cropped and resized on the host from 250x250 to size x size), steps, batch, k (images per person in a
batch), margin, embed, lr, seed, smoke.

LFW has one split of 13,233 images of 5,749 people; the loader gives each image the person as its `identity`
(`vision_jax.data.tfds_features`: people numbered by their sorted names), which the task uses as the class. People
are held out: the first 80% of the names train (`dataset.classes=":80%"`, 4,599 people) and the other 20% evaluate
(`dataset.eval_classes="80%:"`, 1,150), so verification, episodes and the gallery only meet people never trained on.
Training batches are P people x K images (`input.sampler=balanced`; LFW has no class label, so the sampler groups by
the identity, `vision_jax.data.samplers.grouping_key`). Known limits: most people have one image, and a person with
fewer than K images is drawn with replacement (the same image under two flips is then a positive pair); the pairs
sampler is not usable here (the pipeline takes a pair's second label from `label`). Not run on the real LFW here
(no LFW data on the development machine); tests/tasks/test_embedding_tfds_runs.py runs it end to end on a small
fake LFW prepared with the real TFDS builder's features.
"""

from vision_jax.configs import common, siamese_digits


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, loss="batch_all", model="resnet18_cifar", size=64, steps=20000, batch=128, k=4,
                          margin=0.0, embed=128, lr=3e-4, seed=0, smoke=False)
  config = siamese_digits.embedding_config(args, "lfw", 5000, "verification_auc", ("train", "train"), args.size)
  config.dataset.classes, config.dataset.eval_classes = ":80%", "80%:"  # people held out of training
  config.input.eval_batch_size = 256
  config.input.augment = "flip_lr"
  config.input.normalize = "normalize(mean=0.5, std=0.25)"
  config.embedding.episodes = "5x1,20x1,5x5"
  config.embedding.queries = 1  # most people have few images
  return siamese_digits.shrink_for_smoke(config, 16, 50) if args.smoke else config
