"""Dense-prediction models: images [N, H, W, C] -> per-pixel logits [N, H, W, K]. Importing registers them.

  fcn{32s,16s,8s}_vgg16   FCN on VGG16, the paper's Caffe layout (`fcn.FCN`)
  fcn{32s,16s,8s}_small   the same FCN head on a small VGG-style backbone, "same" layout (the digits)
  fcn_resnet50            torchvision's `fcn_resnet50` (`fcn_resnet.FCNResNet`)
  unet, unet_same         U-Net, the paper's valid form (572 -> 388) and the same-padded form with batch norm
  unet_small_valid/same   small U-Nets for the digits (depth 3, width 16); the valid one mirror-pads its input
"""

from vision_jax.models.segmentation import fcn, fcn_resnet, unet  # importing registers the models

NAMES = tuple(fcn.PRESETS) + fcn_resnet.NAMES + tuple(unet.PRESETS)
