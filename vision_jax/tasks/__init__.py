"""Task families: each owns its networks, steps, evaluators and reports (the protocol is `tasks.base.Task`).

Importing this package registers the built-in tasks; `get(config, spec)` builds the one `config.task` names.
"""

from vision_jax.tasks import classification, multi_head  # noqa: F401  (importing registers the tasks)
from vision_jax.tasks.base import Task, get, names, register  # noqa: F401
