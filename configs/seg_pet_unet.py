"""U-Net on Oxford-IIIT Pet trimaps (TFDS `oxford_iiit_pet`: pet 1, background 0, the border ignored).

    tfds build oxford_iiit_pet --file_format=array_record          # once, where TFDS data lives
    python -m vision_jax.main --config=configs/seg_pet_unet.py --workdir=runs/seg_pet_unet
    python -m vision_jax.main --config=configs/seg_pet_unet.py:size=128,width=32,smoke

Arguments (`:key=value,...`): size (images and masks are resized on the host, centre crop, masks nearest),
depth, width, epochs, batch, lr, dice, smoke. Same-padded U-Net with batch norm (`unet_same`), flips and
random crops moving the masks, cross-entropy + 0.5 Dice.
"""

import ml_collections

from vision_jax.configs import common


def resized_unet_config(dataset: str, args: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The same-padded U-Net recipe on images of varying sizes resized on the host to `args.size` (shared with
  configs/seg_folder_unet.py): Adam, warm-up + cosine, cross-entropy + `args.dice` x Dice, best by mean IoU."""
  config = common.base_config()
  config.task = "segmentation"
  config.dataset.name = dataset
  config.model.name = "unet_same"
  config.model.kwargs = ml_collections.ConfigDict({"depth": args.depth, "width": args.width})
  config.num_epochs = args.epochs
  config.input.image_size = args.size
  config.input.batch_size = args.batch
  config.input.preprocess = "to_float"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 200
  config.checkpoint.best_metric = "mean_iou"
  config.segmentation = ml_collections.ConfigDict({"loss_weights": {"cross_entropy": 1.0, "dice": args.dice},
                                                   "grid_examples": 8})
  return config


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, size=160, depth=4, width=32, epochs=30, batch=16, lr=1e-3, dice=0.5, smoke=False)
  config = resized_unet_config("oxford_iiit_pet", args)
  config.dataset.eval_split = "test"
  config.input.eval_batch_size = 32
  config.input.augment = "flip_lr|random_resized_crop(scale=(0.5, 1.0))"
  config.input.normalize = "normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))"
  if args.smoke:
    common.apply_smoke(config)
    config.dataset.eval_split = "test[:64]"
  return config
