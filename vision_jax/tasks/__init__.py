"""Task families: each owns its networks, steps, evaluators and reports (the protocol is `tasks.base.Task`).

Importing this package registers the built-in tasks; `get(config, spec)` builds the one `config.task` names.
"""

# Importing the modules registers the tasks.
from vision_jax.tasks import (classification, detection, embedding, gan, image_translation,  # noqa: F401
                              localization, multi_head, progan, region_cnn, segmentation,
                              sliding_window, two_stage)
from vision_jax.tasks.base import Task, get, names, register  # noqa: F401
