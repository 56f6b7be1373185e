"""Classifier families; importing this package registers each of them."""

from vision_jax.models.classifiers import (  # noqa: F401
    alexnet, densenet, efficientnet, inception, lenet, mobilenet, nin, resnet, simple_cnn, vgg, xception)
