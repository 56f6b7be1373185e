"""pix2pix (Isola et al.) on paired digit views: edge map -> digit (task `image_translation`, mode pix2pix).

    python -m vision_jax.main --config=configs/gan_pix2pix.py --workdir=/work/runs/gan_translation/pix2pix
    python -m vision_jax.main --config=configs/gan_pix2pix.py:smoke --workdir=/tmp/pix2pix_smoke   # seconds

U-Net generator (widths 32, 64; instance norm, dropout 0.5 in the innermost decoder level), PatchGAN
discriminator on the (edges, digit) pair (widths 32, 64), non-saturating adversarial loss + 100 x L1, Adam 2e-4
with b1 0.5 for both networks, batch 16.
Every evaluation scores L1/PSNR against the copied input (the baseline) and FID on this project's digits feature
network, and writes translations.png (input | baseline | output | target rows).

Arguments (`:key=value,...`): steps, batch, lr, seed, smoke.
`translation_config` is the shared recipe of configs/gan_cyclegan.py, gan_srgan.py and gan_horse2zebra.py.
"""

import ml_collections

from vision_jax.configs import common


def translation_config(args: ml_collections.ConfigDict, dataset: str,
                       **translation: object) -> ml_collections.ConfigDict:
  """The shared image-to-image recipe; `translation` overrides entries of `config.translation`.

  Args:
    args: parsed arguments with steps, batch, lr, seed, smoke.
    dataset: the paired dataset (`image` the input view, `image2` the target).
  """
  config = common.base_config()
  config.task = "image_translation"
  config.seed = args.seed
  config.dataset.name = dataset
  config.num_train_steps = args.steps
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 500
  config.input.preprocess = "to_float"
  config.input.normalize = "normalize(mean=0.5, std=0.5)"  # [-1, 1], the generators' tanh range
  config.translation = ml_collections.ConfigDict({
      "mode": "pix2pix", "target_key": "image2", "loss": "non_saturating", "l1_weight": 100.0,
      "cycle_weight": 10.0, "identity_weight": 5.0, "pool_size": 50, "content_net": "", "content_weight": 1.0,
      "pixel_weight": 0.0, "adversarial_weight": 1e-3, "generator_features": (32, 64),
      "discriminator_features": (32, 64), "num_blocks": 4, "dropout": 0.5, "feature_net": "mnist_embedded",
      "num_samples": 12})
  config.translation.update(translation)
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.optimizer.b1 = 0.5
  config.optimizer.b2 = 0.999
  config.log_every_steps = 50
  config.eval_every_steps = max(1, args.steps // 4)
  config.checkpoint.every_steps = config.eval_every_steps
  if args.smoke:
    common.apply_smoke(config)
    config.input.batch_size = 8
    config.translation.num_samples = 4
  return config


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=800, batch=16, lr=2e-4, seed=0, smoke=False)
  return translation_config(args, "digit_edges2digit")
