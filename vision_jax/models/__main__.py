"""`python -m vision_jax.models MODEL --input_shape=H,W,C`: prints a model summary (see `summary.py`)."""

import sys

from vision_jax.models.summary import main

if __name__ == "__main__":
  sys.exit(main())
