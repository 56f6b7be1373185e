"""U-Net on your own folder of image/mask pairs (`mask_pairs:PATH`: PATH/images/*.jpg|png with PATH/masks/*.png
class-index masks, 255 unlabelled, optional PATH/classes.txt; vision_jax/data/formats/mask_pairs.py).

    python -m vision_jax.main --config=configs/seg_folder_unet.py:path=/data/my_masks --workdir=runs/my_masks
    python -m vision_jax.main --config=configs/seg_folder_unet.py:path=/data/my_masks,smoke
    python -m vision_jax.main --config=configs/seg_folder_unet.py:path=/data/my_masks --workdir=runs/my_masks \
        --mode=predict --images=/data/my_masks/images/a.png   # writes predictions/a_mask.png, a_overlay.png

Arguments (`:key=value,...`): path, size (host resize of images and masks; images are read as RGB),
depth, width, epochs, batch, lr, dice, smoke. Without train/val folders under images/, 20% of the pairs
(seeded) are held out for evaluation. `--mode=predict` writes into PATH/predictions/ (outside images/ and masks/,
so the dataset stays as it was), the overlay showing the truth when the image has a mask in PATH/masks/.
"""

import os

from vision_jax.configs import common, seg_pet_unet

DEFAULT_PATH = "data/segmentation"


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, path=DEFAULT_PATH, size=128, depth=4, width=16, epochs=50, batch=8, lr=1e-3,
                          dice=0.5, smoke=False)
  config = seg_pet_unet.resized_unet_config(f"mask_pairs:{args.path}", args)
  config.dataset.train_split = "train"
  config.dataset.eval_split = "validation"
  config.input.eval_batch_size = 16
  config.input.augment = "flip_lr"
  config.input.normalize = "normalize(mean=0.5, std=0.25)"
  config.segmentation.predict_dir = os.path.join(args.path, "predictions")
  if args.smoke:
    common.apply_smoke(config)
  return config
