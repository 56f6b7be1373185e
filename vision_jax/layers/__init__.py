"""Reusable building blocks shared by the model families."""

from vision_jax.layers.conv import (ConvBN, DepthwiseSeparable, SeparableConv, adaptive_avg_pool, avg_pool,
                                    max_pool, output_size, resolve_padding)
from vision_jax.layers.dense import DenseBlock, DenseLayer, Transition
from vision_jax.layers.inception import InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, InceptionV1
from vision_jax.layers.mobile import InvertedResidual, SqueezeExcite, make_divisible
from vision_jax.layers.residual import BasicBlock, Bottleneck

__all__ = [
    "BasicBlock", "Bottleneck", "ConvBN", "DenseBlock", "DenseLayer", "DepthwiseSeparable", "InceptionA",
    "InceptionB", "InceptionC", "InceptionD", "InceptionE", "InceptionV1", "InvertedResidual", "SeparableConv",
    "SqueezeExcite", "Transition", "adaptive_avg_pool", "avg_pool", "make_divisible", "max_pool",
    "output_size", "resolve_padding",
]
