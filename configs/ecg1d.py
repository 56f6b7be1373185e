"""A 1D CNN on the synthetic ECG-like rhythm task (normal / tachycardia / bradycardia / irregular).

    python -m vision_jax.main --config=configs/ecg1d.py --workdir=runs/ecg1d
    python -m vision_jax.main --config=configs/ecg1d.py:smoke                     # seconds

Dataset `synthetic_ecg` (vision_jax.data.synthetic_ecg: float32 signals [1024, 1] at 100 Hz, generated in
memory); model `cnn1d` (vision_jax.models.conv_nd: conv-BN-ReLU-pool blocks along time, global average pooling).
The signals are fed as they are: no image ops apply to them.

Arguments (`:key=value,...`): model, epochs, batch, lr, smoke.
"""

from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="cnn1d", epochs=5, batch=64, lr=3e-3, smoke=False)
  config = common.base_config()
  config.dataset.name = "synthetic_ecg"
  config.model.name = args.model
  config.num_epochs = args.epochs
  config.input.batch_size = args.batch
  config.input.preprocess = ""  # float signals already
  config.optimizer.learning_rate = args.lr
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 100
  if args.smoke:
    common.apply_smoke(config)
  return config
