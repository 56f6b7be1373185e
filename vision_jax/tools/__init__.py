"""Command-line tools that are not training runs: `python -m vision_jax.tools.accel_check`."""
