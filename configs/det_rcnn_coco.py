"""Faster R-CNN ResNet-50-FPN (torchvision's `fasterrcnn_resnet50_fpn` sizes) on COCO 2017 through TFDS (prepare
`coco/2017` first). Build-tested only: no run of it has been measured here.

    python -m vision_jax.main --config=configs/det_rcnn_coco.py --workdir=runs/rcnn_coco
    python -m vision_jax.main --config=configs/det_rcnn_coco.py:smoke --workdir=/tmp/rcnn_coco   # minutes on a CPU

det_rcnn_voc's inputs, detector sizes and optimizer on COCO's 80 classes with torchvision's 1x schedule length
(90k steps of batch 16). The TFDS features used here carry boxes only, so the variant is fpn or faster; Mask
R-CNN (`variant=mask`) needs a dataset with instance_masks.

Arguments (`:key=value,...`): variant, steps, batch, lr, smoke.
"""

from vision_jax.configs import common, det_rcnn_voc


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, variant="fpn", steps=90000, batch=16, lr=0.02, smoke=False)
  config = det_rcnn_voc.get_config(f"variant={args.variant},steps={args.steps},batch={args.batch},lr={args.lr},"
                                   f"smoke={args.smoke}")
  config.dataset.name = "coco/2017"
  config.dataset.train_split = "train"
  config.dataset.eval_split = "validation[:2]" if args.smoke else "validation"
  config.input.max_objects = 100
  if not args.smoke:
    config.eval_every_steps = 30000
  return config
