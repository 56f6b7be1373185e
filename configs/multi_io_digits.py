"""Two inputs, three heads: a pair of embedded-MNIST digits -> their sum, the first digit, same digit or not.

    python -m vision_jax.main --config=configs/multi_io_digits.py --workdir=runs/multi_io_digits
    python -m vision_jax.main --config=configs/multi_io_digits.py:sum_weight=0,smoke      # seconds, no sum head loss
    python -m vision_jax.main --config=configs/multi_io_digits.py --config.heads.same_digit.weight=2.0

Dataset `mnist_pairs` (vision_jax.data.digit_pairs); model `siamese_multi_head`: one shared (Siamese) encoder for
both digits and three heads; task `multi_head` (vision_jax.tasks.multi_head):
  * `digit_sum`:   regression of label + label2 (squared error; weight `sum_weight`),
  * `first_digit`: 10-class softmax of the first digit (cross-entropy; weight `digit_weight`),
  * `same_digit`:  whether both digits have the same class (sigmoid cross-entropy; weight `same_weight`).
The training loss is the weighted sum of the three head losses. The sum's squared error is ~20x the other
losses at the start, hence its smaller default weight.

Arguments (`:key=value,...`): epochs, batch, lr, sum_weight, digit_weight, same_weight, smoke.
"""

import ml_collections

from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, epochs=8, batch=128, lr=2e-3, sum_weight=0.1, digit_weight=1.0, same_weight=1.0,
                          smoke=False)
  config = common.base_config()
  config.task = "multi_head"
  config.dataset.name = "mnist_pairs"
  config.model.name = "siamese_multi_head"
  config.model.inputs = "image,image2"  # batch keys fed to the model, in order
  config.heads = ml_collections.ConfigDict({
      "digit_sum": {"kind": "regression", "target": "digit_sum", "weight": args.sum_weight},
      "first_digit": {"kind": "multiclass", "target": "label", "weight": args.digit_weight, "num_classes": 10},
      "same_digit": {"kind": "binary", "target": "same", "weight": args.same_weight},
  })
  config.num_epochs = args.epochs
  config.input.batch_size = args.batch
  config.input.preprocess = "to_float"
  config.input.augment = "pad_crop(pad=2)"
  config.input.normalize = "normalize(mean=0.1307, std=0.3081)"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 100
  if args.smoke:
    common.apply_smoke(config)
  return config
