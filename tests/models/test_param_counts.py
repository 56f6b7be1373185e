"""Every classifier's parameter count against published references, via jax.eval_shape (no compile).

Conventions: "params" is the trainable collection; batch-norm running statistics live in "batch_stats".
References: torchvision's model tables (counts of `model.parameters()`, which exclude BN running statistics),
Keras' `model.summary()` "Trainable params" (excludes BN moving statistics) and "Total params" (includes them),
and hand counts from the lectures.
"""

import pytest

from vision_jax import models

IMAGENET = (224, 224, 3)

# (model, input shape, kwargs, expected trainable params, source)
TRAINABLE = [
    ("alexnet", IMAGENET, {}, 61_100_840, "torchvision"),
    ("vgg11", IMAGENET, {}, 132_863_336, "torchvision"),
    ("vgg13", IMAGENET, {}, 133_047_848, "torchvision"),
    ("vgg16", IMAGENET, {}, 138_357_544, "torchvision / Keras VGG16"),
    ("vgg19", IMAGENET, {}, 143_667_240, "torchvision / Keras VGG19"),
    ("vgg11_bn", IMAGENET, {}, 132_868_840, "torchvision"),
    ("vgg13_bn", IMAGENET, {}, 133_053_736, "torchvision"),
    ("vgg16_bn", IMAGENET, {}, 138_365_992, "torchvision"),
    ("vgg19_bn", IMAGENET, {}, 143_678_248, "torchvision"),
    ("keras_vgg16", IMAGENET, {}, 138_357_544, "Keras VGG16"),
    ("resnet18", IMAGENET, {}, 11_689_512, "torchvision"),
    ("resnet34", IMAGENET, {}, 21_797_672, "torchvision"),
    ("resnet50", IMAGENET, {}, 25_557_032, "torchvision"),
    ("resnet101", IMAGENET, {}, 44_549_160, "torchvision"),
    ("resnet152", IMAGENET, {}, 60_192_808, "torchvision"),
    ("keras_resnet50", IMAGENET, {}, 25_583_592, "Keras ResNet50 trainable"),
    ("googlenet", IMAGENET, {}, 6_624_904, "torchvision, no aux heads"),
    ("googlenet", IMAGENET, {"aux_logits": True}, 13_004_888, "torchvision, aux heads"),
    ("inception_v3", (299, 299, 3), {}, 23_834_568, "torchvision, no aux head"),
    ("inception_v3", (299, 299, 3), {"aux_logits": True}, 27_161_264, "torchvision, aux head"),
    ("keras_inception_v3", (299, 299, 3), {}, 23_817_352, "Keras InceptionV3 trainable"),
    ("xception", (299, 299, 3), {}, 22_855_952, "Keras Xception trainable"),
    ("mobilenet_v1", IMAGENET, {}, 4_231_976, "Keras MobileNet trainable, alpha 1"),
    ("mobilenet_v2", IMAGENET, {}, 3_504_872, "torchvision"),
    ("keras_mobilenet_v2", IMAGENET, {}, 3_504_872, "Keras MobileNetV2 trainable"),
    ("efficientnet_b0", IMAGENET, {}, 5_288_548, "torchvision / Keras trainable"),
    ("efficientnet_b1", (240, 240, 3), {}, 7_794_184, "torchvision"),
    ("efficientnet_b2", (260, 260, 3), {}, 9_109_994, "torchvision"),
    ("efficientnet_b3", (300, 300, 3), {}, 12_233_232, "torchvision"),
    ("efficientnet_b4", (380, 380, 3), {}, 19_341_616, "torchvision"),
    ("efficientnet_b5", (456, 456, 3), {}, 30_389_784, "torchvision"),
    ("efficientnet_b6", (528, 528, 3), {}, 43_040_704, "torchvision"),
    ("efficientnet_b7", (600, 600, 3), {}, 66_347_960, "torchvision"),
    ("densenet121", IMAGENET, {}, 7_978_856, "torchvision"),
    ("densenet169", IMAGENET, {}, 14_149_480, "torchvision"),
    ("densenet201", IMAGENET, {}, 20_013_928, "torchvision"),
    ("lenet5", (32, 32, 1), {}, 61_706, "LeCun et al. 1998 / lectures"),
    # Hand counts. NIN (CIFAR): 5x5x3x192+192 + 192x160+160 + 160x96+96 + 5x5x96x192+192 + 2*(192x192+192)
    # + 3x3x192x192+192 + 192x192+192 + 192x10+10. SimpleCNN (Keras CIFAR-10 example): 896 + 9,248 + 18,496
    # + 36,928 + (6x6x64)x512+512 + 512x10+10. ResNet-18 CIFAR stem: the usual 11,173,962.
    ("nin", (32, 32, 3), {}, 966_986, "hand count"),
    ("simple_cnn", (32, 32, 3), {}, 1_250_858, "hand count / Keras cifar10_cnn example"),
    ("resnet18_cifar", (32, 32, 3), {}, 11_173_962, "hand count"),
]

# Keras "Total params" (trainable + BN moving statistics): (model, input shape, kwargs, total).
TOTAL = [
    ("little_vgg", (32, 32, 3), {"num_classes": 20}, 2_270_804),  # the lectures' LittleVGG (VGG9) summary
    ("keras_resnet50", IMAGENET, {}, 25_636_712),
    ("keras_inception_v3", (299, 299, 3), {}, 23_851_784),
    ("xception", (299, 299, 3), {}, 22_910_480),
    ("mobilenet_v1", IMAGENET, {}, 4_253_864),
    ("keras_mobilenet_v2", IMAGENET, {}, 3_538_984),
    ("keras_densenet121", IMAGENET, {}, 8_062_504),
]


@pytest.mark.parametrize("name,shape,kwargs,expected,source", TRAINABLE,
                         ids=[f"{t[0]}{'-aux' if t[2] else ''}" for t in TRAINABLE])
def test_trainable_count(name, shape, kwargs, expected, source):
  counts = models.count_params(models.get(name, **kwargs), shape)
  assert counts["params"] == expected, f"{name}: {counts['params']:,} vs {expected:,} ({source})"


@pytest.mark.parametrize("name,shape,kwargs,expected", TOTAL, ids=[t[0] for t in TOTAL])
def test_total_count_with_bn_statistics(name, shape, kwargs, expected):
  counts = models.count_params(models.get(name, **kwargs), shape)
  assert counts["params"] + counts.get("batch_stats", 0) == expected


def test_every_registered_model_is_pinned():
  pinned = {t[0] for t in TRAINABLE} | {t[0] for t in TOTAL}
  unpinned = set(models.names()) - pinned - set(models.NOT_IMAGE_CLASSIFIERS)  # hand-counted in test_multi_io_models
  # Presets that only change padding/epsilon of a pinned network have the same count by construction.
  assert unpinned <= {"keras_vgg19", "keras_resnet101", "keras_resnet152", "keras_densenet169",
                      "keras_densenet201", "resnet34_cifar", "resnet50_cifar", "lenet5_relu"} | {
                          f"keras_efficientnet_b{i}" for i in range(8)}, sorted(unpinned)
