"""Hyper-parameter search over config overrides: `python -m vision_jax.sweep --config=... --space=...`.

    python -m vision_jax.sweep --config=configs/mnist_lenet.py --workdir=runs/sweep --search=random --trials=6 \
        --space='optimizer.learning_rate=loguniform(1e-4, 1e-2)' --space='input.batch_size=choice(64, 128, 256)' \
        --config.num_epochs=3 --metric=accuracy --mode=max

Each trial is an ordinary run in `<workdir>/trial_NNN/` (see `trials`); `search.run_sweep` proposes the values
(grid, seeded random, or TPE through optuna when installed), runs the trials, and writes `results.csv` sorted by
the metric. Rerunning the same command resumes an interrupted sweep.
"""

from vision_jax.sweep.search import SweepSpec, run_sweep
from vision_jax.sweep.space import Dimension, parse_dimension, parse_space
from vision_jax.sweep.trials import InProcessRunner, Outcome, SubprocessRunner
