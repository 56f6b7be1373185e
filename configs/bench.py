"""The defaults `python -m vision_jax.bench` builds its steps from (configs/common.py's base config, unchanged)."""

from __future__ import annotations

from vision_jax.configs import common


def get_config(arg: str | None = None):
  """Returns the shared base config; `arg` is not used."""
  del arg
  return common.base_config()
