"""Reading users' image and mask files with PIL: headers up front, pixels when an example is read.

Images become uint8 [H, W, C] with a fixed channel count C (1 or 3):
  * grayscale ("L", "1") is repeated to 3 channels, colour is converted to luma ("L") for 1 channel;
  * alpha is dropped, not composited: an RGBA pixel keeps its stored colour whatever its opacity ("LA" likewise);
  * palette images ("P") are looked up in their palette (through RGBA when the palette has transparency);
  * 16-bit grayscale ("I;16", or "I" with values in 0..65535) is scaled to 8 bits by keeping the high byte
    (value >> 8); float images ("F", e.g. TIFF) with values in [0, 1] are scaled by 255, in [0, 255] rounded;
    anything else (negative or larger values, NaN) is refused with one line rather than clipped;
  * images over `Image.MAX_IMAGE_PIXELS` pixels (decompression bombs) are refused from their header;
  * a GIF gives its first frame; EXIF orientation is not applied (as in Keras).
Masks are single-channel class indices, read as stored: a palette PNG gives its palette indices, not colours.
"""

from __future__ import annotations

import os
import struct
import warnings

import numpy as np
from PIL import Image

from vision_jax.data.formats.source import SkipReport, error_summary, split_indices
from vision_jax.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# What PIL raises on a corrupt or unsupported file, depending on the format plugin.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, Image.DecompressionBombError)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_SPLIT_FOLDERS = {"validation": ("validation", "val"), "val": ("val", "validation")}


def is_image_file(name: str) -> bool:
  """Whether a file name has one of `IMAGE_EXTENSIONS` (any case)."""
  return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(directory: str, recursive: bool = True) -> list[str]:
  """Image files under a directory, sorted, hidden files and folders left out.

  Args:
    directory: the folder to list.
    recursive: also list the files of its subfolders.

  Returns:
    Paths (joined onto `directory`), sorted by path.
  """
  found = []
  for folder, subfolders, files in os.walk(directory, followlinks=True):
    subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")) if recursive else []
    found += [os.path.join(folder, f) for f in files if is_image_file(f) and not f.startswith(".")]
  return sorted(found)


def check_pixel_count(image: Image.Image, path: str) -> None:
  """Refuses an image whose header states more than `Image.MAX_IMAGE_PIXELS` pixels, before decoding it.

  Raises:
    DataError: too many pixels (one line naming the limit and the fix).
  """
  width, height = image.size
  if width * height > Image.MAX_IMAGE_PIXELS:
    raise DataError(f"image {path} is {width}x{height} = {width * height:,} pixels, over the "
                    f"{Image.MAX_IMAGE_PIXELS:,}-pixel limit against decompression bombs; resize it first")


def eight_bit(image: Image.Image, path: str) -> Image.Image:
  """The image with 8-bit channels: 16-bit and float grayscale converted faithfully (module docstring), other
  modes unchanged.

  Raises:
    DataError: a 32-bit integer or float image whose values are not 16-bit, [0, 1] or [0, 255] intensities.
  """
  if image.mode not in _SIXTEEN_BIT_MODES + ("F",):
    return image
  values = np.asarray(image)
  if image.mode == "F":
    finite = np.isfinite(values).all()
    top = 1.0 if finite and values.size and values.min() >= 0 and values.max() <= 1 else 255.0
    if not finite or (values.size and (values.min() < 0 or values.max() > 255)):
      raise DataError(f"float image {path} has values outside [0, 1] and [0, 255] (or NaN); save it as 8-bit "
                      "PNG/JPEG, or scale it to [0, 1]")
    return Image.fromarray(np.rint(values.astype(np.float64) * (255.0 / top)).astype(np.uint8), "L")
  if values.size and (values.min() < 0 or values.max() > 65535):
    raise DataError(f"image {path} of mode {image.mode} has values outside 0..65535; save it as an 8- or 16-bit PNG")
  return Image.fromarray((values.astype(np.int64) >> 8).astype(np.uint8), "L")


def image_size(path: str) -> tuple[int, int]:
  """(width, height) of an image file from its header (the pixels are not decoded).

  Raises:
    DataError: a missing file or one PIL cannot identify.
  """
  try:
    with Image.open(path) as image:
      return image.size
  except _DECODE_ERRORS as e:
    raise DataError(f"cannot read image {path} ({error_summary(e)}); replace or remove the file") from None


def read_image(path: str, channels: int) -> np.ndarray:
  """Decodes an image file to uint8 [H, W, channels] (see the module docstring for the conversions).

  Raises:
    DataError: a missing, corrupt or truncated file.
  """
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_pixel_count refuses them instead
      with Image.open(path) as image:
        check_pixel_count(image, path)
        return _to_channels(eight_bit(image, path), channels)
  except _DECODE_ERRORS as e:
    raise DataError(f"cannot read image {path} ({error_summary(e)}); replace or remove the file") from None


def read_image_of_size(path: str, channels: int, width: int, height: int, stated_by: str, fix: str) -> np.ndarray:
  """`read_image`, checked against the size an annotation file states for it.

  Args:
    path: the image file.
    channels: 1 or 3.
    width: the stated width W.
    height: the stated height H.
    stated_by: what states the size, e.g. "ann.json image 3".
    fix: what the user should change when the sizes differ.

  Returns:
    uint8 [H, W, channels].

  Raises:
    DataError: an unreadable image or one of another size.
  """
  image = read_image(path, channels)
  if image.shape[:2] != (height, width):
    raise DataError(f"image {path} is {image.shape[1]}x{image.shape[0]} but {stated_by} says {width}x{height}; "
                    f"{fix}")
  return image


def read_mask(path: str) -> np.ndarray:
  """Decodes a single-channel mask file (class indices) to uint8 [H, W].

  Raises:
    DataError: a missing or corrupt file, a colour (RGB/RGBA) mask or values above 255.
  """
  try:
    with Image.open(path) as image:
      mode = image.mode
      mask = np.asarray(image)
  except _DECODE_ERRORS as e:
    raise DataError(f"cannot read mask {path} ({error_summary(e)}); replace or remove the file") from None
  if mask.ndim != 2:
    raise DataError(f"mask {path} has mode {mode} with {mask.shape[-1]} channels; save class indices as a "
                    "single-channel (L or P) PNG")
  if mask.dtype != np.uint8 and mask.dtype != bool and (mask.min() < 0 or mask.max() > 255):
    raise DataError(f"mask {path} has values outside 0..255; store class indices 0..254 (255 = ignore)")
  return mask.astype(np.uint8)


def same_size_mask(mask_path: str, image: np.ndarray, image_path: str) -> np.ndarray:
  """The mask file as uint8 [H, W], checked to have the size of its image [H, W, C].

  Raises:
    DataError: an unreadable mask or one of another size than the image.
  """
  mask = read_mask(mask_path)
  if mask.shape != image.shape[:2]:
    raise DataError(f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} is "
                    f"{image.shape[1]}x{image.shape[0]}; save the mask at the image's size")
  return mask


def readable_sizes(paths: list[str], root: str, strict: bool,
                   skipped: SkipReport) -> list[tuple[str, tuple[int, int]]]:
  """(path, (width, height)) of the files whose header PIL can read; the others are added to `skipped` (named
  relative to `root`), or raise in strict mode.

  Raises:
    DataError: an unreadable file when `strict`.
  """
  readable = []
  for path in paths:
    try:
      readable.append((path, image_size(path)))
    except DataError:
      if strict:
        raise
      skipped.add(os.path.relpath(path, root))
  return readable


def split_images(image_root: str, split: str, validation_fraction: float, seed: int, strict: bool,
                 skipped: SkipReport, where: str) -> list[tuple[str, tuple[int, int]]]:
  """The readable images of a split: those under `image_root/<split>/` when that folder exists ("validation"
  also finds "val"), else a seeded cut of every image under `image_root` (`source.split_indices`).

  Args:
    image_root: the folder of images.
    split: the split name.
    validation_fraction: fraction held out as "validation" when there are no split folders.
    seed: seed of that cut.
    strict: make an unreadable image an error rather than a skipped file.
    skipped: where unreadable files are recorded (named relative to the parent of `image_root`).
    where: the dataset, for error messages.

  Returns:
    [(path, (width, height))] in path order.

  Raises:
    DataError: no image files, no readable ones, or an unreadable one when strict.
  """
  folder = next((f for f in _SPLIT_FOLDERS.get(split, (split,)) if os.path.isdir(os.path.join(image_root, f))), None)
  paths = list_images(os.path.join(image_root, folder) if folder else image_root)
  if not paths:
    raise DataError(f"{where}: {image_root} has no image files for split {split!r}; add images")
  readable = readable_sizes(paths, os.path.dirname(image_root), strict, skipped)
  if not readable:
    raise DataError(f"{where}: none of the {len(paths)} images under {image_root} can be read; replace the files")
  if not folder:
    readable = [readable[i] for i in split_indices(len(readable), split, validation_fraction, seed, where)]
  return readable


def _to_channels(image: Image.Image, channels: int) -> np.ndarray:
  if image.mode == "P" and "transparency" in image.info:
    image = image.convert("RGBA")
  pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"))
  return pixels[..., None] if channels == 1 else pixels


def shared_image_shape(sizes: list[tuple[int, int]], channels: int) -> tuple[int, int, int]:
  """(H, W, channels) when every (width, height) in `sizes` is the same, else (0, 0, channels)."""
  unique = set(sizes)
  if len(unique) == 1:
    width, height = unique.pop()
    return (height, width, channels)
  return (0, 0, channels)
