"""Shapes of the image-to-image networks (pixel-shuffle upsampling x2 / x4, U-Net, ResNet generator, PatchGAN logit
grid) and the PatchGAN's receptive field against the hand-worked values. (A gradient-support measurement of the
field does not apply: instance normalisation makes every logit depend on the whole image.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.errors import ConfigError
from vision_jax.models.generative import cyclegan, pix2pix, srgan


@pytest.mark.parametrize("scale", [2, 4])
def test_srgan_generator_upsamples_by_pixel_shuffle(scale):
  model = srgan.SRGenerator(3, scale, features=8, num_blocks=1)
  x = jnp.ones((2, 7, 5, 1))
  variables = model.init(jax.random.PRNGKey(0), x)
  out = model.apply(variables, x)
  assert out.shape == (2, 7 * scale, 5 * scale, 3)
  shuffle_convs = [k for k in variables["params"] if variables["params"][k].get("kernel", np.zeros(0)).shape[-1:] ==
                   (32,)]
  assert len(shuffle_convs) == scale.bit_length() - 1  # one conv to 4F channels per x2 pixel shuffle
  assert float(jnp.max(jnp.abs(out))) <= 1


@pytest.mark.slow  # ~18 s of compiles; the conformance test runs pix2pix's generator through a train step
def test_generators_keep_the_image_size():
  x = jnp.ones((2, 28, 28, 1))
  for model in (pix2pix.UNetGenerator(1, (8, 16)), cyclegan.ResnetGenerator(1, 8, 2, 1)):
    variables = model.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, x)
    assert model.apply(variables, x).shape == (2, 28, 28, 1)
  with pytest.raises(ConfigError):
    pix2pix.UNetGenerator(1, (8, 16, 32)).init(jax.random.PRNGKey(0), x)  # 28 is not divisible by 8


@pytest.mark.parametrize("num_strided", [1, 2])
def test_patchgan_logit_grid(num_strided):
  model = pix2pix.PatchDiscriminator((4,) * num_strided)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 32, 32, 2))
  logits = model.apply(model.init(jax.random.PRNGKey(1), x), x)
  assert logits.shape == (1, 32 // 2 ** num_strided, 32 // 2 ** num_strided)


def test_patchgan_receptive_field_by_hand():
  # 4x4 kernels; field r and jump j over the layers: r += 3 j, then j *= stride.
  # 3 strided: r = 4, 10, 22 (j = 8), then the two stride-1 layers: 46, 70 (the paper's 70x70 PatchGAN).
  assert pix2pix.patch_receptive_field(3) == 70
  assert pix2pix.patch_receptive_field(2) == 34  # 4, 10 (j = 4), 22, 34
  assert pix2pix.patch_receptive_field(1) == 16  # 4 (j = 2), 10, 16
