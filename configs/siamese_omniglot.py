"""Siamese embeddings on Omniglot (TFDS): train on the 964 background characters, evaluate 20-way one-shot on the
659 characters of the evaluation alphabets, as Koch et al. (2015), who report 92% with their pair classifier.

    tfds build omniglot --file_format=array_record      # once (needs tensorflow for that step only)
    python -m vision_jax.main --config=configs/siamese_omniglot.py --workdir=runs/omniglot_bh
    python -m vision_jax.main --config=configs/siamese_omniglot.py:loss=pair_bce --workdir=runs/omniglot_koch

Arguments (`:key=value,...`): loss (as configs/siamese_digits.py), model (backbone, default simple_cnn), size
(images are resized on the host from 105x105 to size x size; 105 is Koch's), steps, batch, k, margin, embed, lr,
seed, smoke. The two splits hold different characters, so nothing is masked (`embedding.heldout_classes = ""`).
Evaluation: 20-way and 5-way one-shot, 5-way five-shot episodes (1,000 each, 5 queries per character, nearest
prototype), verification and one-shot gallery recognition on the test split's characters.
"""

from vision_jax.configs import common, siamese_digits


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, loss="batch_hard", model="simple_cnn", size=56, steps=20000, batch=128, k=4,
                          margin=0.0, embed=128, lr=3e-4, seed=0, smoke=False)
  config = siamese_digits.embedding_config(args, "omniglot", 5000, "episodes_20way_1shot", ("train", "test"),
                                          args.size)
  config.input.eval_batch_size = 512
  config.input.augment = ""  # the ops pad with black, Omniglot's strokes are black on white
  config.embedding.episodes = "20x1,5x1,5x5"
  return siamese_digits.shrink_for_smoke(config, 16, 50) if args.smoke else config
