"""A 3D CNN on the synthetic volumes task (16^3 noisy volumes: empty / sphere / cube / cylinder).

    python -m vision_jax.main --config=configs/volumes3d.py --workdir=runs/volumes3d
    python -m vision_jax.main --config=configs/volumes3d.py:smoke                  # seconds

Dataset `synthetic_volumes` (vision_jax.data.synthetic_volumes: uint8 [16, 16, 16, 1], generated in memory);
model `cnn3d` (vision_jax.models.conv_nd: 3x3x3 conv-BN-ReLU-pool blocks, global average pooling). The rest is
configs/ecg1d.py's recipe (Adam, warm-up + cosine, no augmentation).

Arguments (`:key=value,...`): model, epochs, batch, lr, smoke.
"""

from vision_jax.configs import common, ecg1d


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="cnn3d", epochs=3, batch=64, lr=3e-3, smoke=False)
  config = ecg1d.get_config(f"model={args.model},epochs={args.epochs},batch={args.batch},lr={args.lr},"
                            f"smoke={args.smoke}")
  config.dataset.name = "synthetic_volumes"
  config.input.preprocess = "to_float"  # uint8 0..255 -> 0..1
  return config
