"""U-Net (Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation", 2015).

A contracting path of `depth` levels (two 3x3 convs + ReLU, then 2x2 max pool; widths double), two 3x3 convs
at the bottom, and an expanding path (upsample by 2 halving the channels, concatenate the skip of the same
level, two 3x3 convs), then a 1x1 conv to the classes.

  * padding "valid" is the paper's form: unpadded convs, so every level loses 4 pixels, the skips are
    centre-cropped to the upsampled map, and a 572x572 tile gives 388x388 scores (depth 4). With
    `mirror_pad` the input is reflected out to the tile size whose output covers it, and the output is cropped
    back to the input size (the paper's overlap-tile strategy for one tile), so the model maps H x W to H x W.
  * padding "same" is the common form: padded convs, output size = input size (divisible by 2^depth).
  * upsampling "transposed" is the paper's 2x2/2 up-convolution; "resize" is nearest resize + 3x3 conv
    (`layers.upsampling.ResizeConv`, no checkerboard).
  * batch_norm adds batch norm after every 3x3 conv (not in the paper; common since).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.errors import ConfigError
from vision_jax.layers.conv import max_pool
from vision_jax.layers.upsampling import ResizeConv, TransposedConv
from vision_jax.models.registry import register_factory

PADDINGS = ("valid", "same")
UPSAMPLINGS = ("transposed", "resize")


def valid_output_size(input_size: int, depth: int) -> int:
  """Output side of the valid U-Net for an input side, or -1 when a pool would see an odd map.

  Each level's two convs take 4 pixels, a pool halves (the map must be even), each up level doubles and
  loses 4 again: 572 -> 388 at depth 4.
  """
  size = input_size
  for _ in range(depth):
    size -= 4
    if size <= 0 or size % 2:
      return -1
    size //= 2
  size -= 4
  for _ in range(depth):
    size = 2 * size - 4
  return size if size > 0 else -1


def valid_tile(size: int, depth: int) -> tuple[int, int]:
  """The smallest (input, output) tile sides of the valid U-Net whose output covers `size` pixels."""
  bottom = 1
  while True:
    output = bottom
    tile = bottom + 4
    for _ in range(depth):
      output = 2 * output - 4
      tile = 2 * tile + 4
    if output >= size and output > 0:
      return tile, output
    bottom += 1


def _crop_to(x: jax.Array, height: int, width: int) -> jax.Array:
  """The central height x width window of [N, H, W, C] (the paper's skip crop)."""
  top, left = (x.shape[1] - height) // 2, (x.shape[2] - width) // 2
  return x[:, top:top + height, left:left + width]


class DoubleConv(nn.Module):
  """Two 3x3 convs, each with optional batch norm and ReLU.

  Attributes:
    features: output channels.
    padding: "valid" or "same".
    batch_norm: batch norm after each conv (then the convs have no bias).
    dtype: computation dtype.
  """

  features: int
  padding: str = "same"
  batch_norm: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps [N, H, W, C] to [N, H', W', features] (H' = H - 4 when valid)."""
    for i in range(2):
      x = nn.Conv(self.features, (3, 3), padding=self.padding.upper(), use_bias=not self.batch_norm, dtype=self.dtype,
                  name=f"conv{i + 1}")(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype,
                         name=f"bn{i + 1}")(x)
      x = nn.relu(x)
    return x


class UNet(nn.Module):
  """U-Net: images [N, H, W, C] -> logits [N, H', W', K] (see the module docstring for the forms).

  Attributes:
    num_classes: K.
    depth: pooling levels (4 in the paper).
    width: channels of the first level (64 in the paper); level i has width * 2^i.
    padding: "valid" (paper) or "same".
    batch_norm: batch norm after every 3x3 conv.
    upsampling: "transposed" (2x2/2 up-conv) or "resize" (nearest x2 + 3x3 conv).
    mirror_pad: valid form only: reflect the input out to a tile whose output covers it, crop the output to
      the input size.
    dtype: computation dtype.
  """

  num_classes: int = 2
  depth: int = 4
  width: int = 64
  padding: str = "valid"
  batch_norm: bool = False
  upsampling: str = "transposed"
  mirror_pad: bool = False
  dtype: jnp.dtype = jnp.float32

  def _check(self, height: int, width: int) -> None:
    if self.padding not in PADDINGS or self.upsampling not in UPSAMPLINGS:
      raise ConfigError(f"U-Net padding {self.padding!r}, upsampling {self.upsampling!r}: use padding "
                        f"{' or '.join(PADDINGS)} and upsampling {' or '.join(UPSAMPLINGS)}")
    if self.padding == "same" and (height % 2**self.depth or width % 2**self.depth):
      raise ConfigError(f"the same-padded U-Net of depth {self.depth} needs sides divisible by {2**self.depth}, got "
                        f"{height}x{width}; resize or pad the images (input.image_size) or lower the depth")
    if self.padding == "valid" and not self.mirror_pad and min(valid_output_size(height, self.depth),
                                                              valid_output_size(width, self.depth)) < 0:
      raise ConfigError(f"{height}x{width} is not a valid U-Net tile at depth {self.depth} (e.g. 572 at depth 4); "
                        "use such a size or set mirror_pad")

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Args: images [N, H, W, C]; train: batch statistics. Returns: logits [N, H', W', num_classes]."""
    height, width = images.shape[1:3]
    self._check(height, width)
    x = images.astype(self.dtype)
    if self.padding == "valid" and self.mirror_pad:
      (tile_h, out_h), (tile_w, out_w) = valid_tile(height, self.depth), valid_tile(width, self.depth)
      top, left = (tile_h - height) // 2, (tile_w - width) // 2
      x = jnp.pad(x, ((0, 0), (top, tile_h - height - top), (left, tile_w - width - left), (0, 0)), mode="reflect")
    conv = functools.partial(DoubleConv, padding=self.padding, batch_norm=self.batch_norm, dtype=self.dtype)
    skips = []
    for level in range(self.depth):
      x = conv(self.width * 2**level, name=f"down{level + 1}")(x, train)
      skips.append(x)
      x = max_pool(x, 2, 2)
    x = conv(self.width * 2**self.depth, name="bottom")(x, train)
    for level in reversed(range(self.depth)):
      features = self.width * 2**level
      if self.upsampling == "transposed":
        x = TransposedConv(features, 2, 2, name=f"up{level + 1}")(x)
      else:
        x = ResizeConv(features, 2, "nearest", 3, name=f"up{level + 1}")(x)
      skip = _crop_to(skips[level], x.shape[1], x.shape[2])
      x = conv(features, name=f"dec{level + 1}")(jnp.concatenate([skip, x.astype(skip.dtype)], -1), train)
    x = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name="logits")(x)
    if self.padding == "valid" and self.mirror_pad:
      x = x[:, top - (tile_h - out_h) // 2:, left - (tile_w - out_w) // 2:][:, :height, :width]
    return x.astype(jnp.float32)


PRESETS = {
    "unet": functools.partial(UNet),
    "unet_same": functools.partial(UNet, padding="same", batch_norm=True),
    "unet_small_valid": functools.partial(UNet, num_classes=11, depth=3, width=16, mirror_pad=True),
    "unet_small_same": functools.partial(UNet, num_classes=11, depth=3, width=16, padding="same", batch_norm=True),
}
for _name, _factory in PRESETS.items():
  register_factory(_name, _factory)
