"""SRGAN (Ledig et al.) x2 on the digits: 14x14 -> 28x28 (task `image_translation`, mode srgan).

    python -m vision_jax.main --config=configs/gan_srgan.py --workdir=/work/runs/gan_translation/srgan
    python -m vision_jax.main --config=configs/gan_srgan.py:smoke --workdir=/tmp/srgan_smoke   # seconds

Residual generator (width 32, 4 blocks, one pixel-shuffle x2 block), conv discriminator, generator loss = content
loss on the conv features of this project's digits feature network (no VGG is downloadable here) + pixel MSE +
1e-3 x non-saturating adversarial loss; Adam 2e-4 (b1 0.5), batch 16. Evaluation: L1/PSNR against bicubic
upsampling, FID.

Arguments (`:key=value,...`): steps, batch, lr, pixel (weight of the pixel MSE; 0 for the paper's content-only
loss), seed, smoke.
"""

from vision_jax.configs import common, gan_pix2pix


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, steps=800, batch=16, lr=2e-4, pixel=1.0, seed=0, smoke=False)
  return gan_pix2pix.translation_config(args, "digit_lowres2highres", mode="srgan", content_net="mnist_embedded",
                                        pixel_weight=args.pixel, generator_features=(32,),
                                        discriminator_features=(32, 64, 128))
