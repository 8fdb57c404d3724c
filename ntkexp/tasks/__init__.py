"""Task registry (``task=<name>``): importing this package registers every task; this is the one list of task
modules (a new task is one module registering itself with ``register_task`` plus one ``conf/task/<name>.yaml``)."""

from ntkexp.tasks.base import TASKS, RunOutput, Task, register_task
from ntkexp.tasks import correlate, kernel_evolution, prune_search, score, search, simulated_search  # noqa: E402,F401  (registration)

__all__ = ["TASKS", "RunOutput", "Task", "register_task"]
