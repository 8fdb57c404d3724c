"""Task registry (``task=<name>``); this is the one list of task modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig

from ntkexp.loggers import ExperimentLogger
from ntkexp.registry import Registry
from ntkexp.tasks.correlate import run_correlate
from ntkexp.tasks.kernel_evolution import run_kernel_evolution
from ntkexp.tasks.search import run_search

TaskFn = Callable[[DictConfig, Path, ExperimentLogger], dict[str, Any]]
TASKS: Registry[TaskFn] = Registry("task")
TASKS.register("correlate", run_correlate)
TASKS.register("kernel_evolution", run_kernel_evolution)
TASKS.register("search", run_search)

__all__ = ["TASKS", "run_correlate", "run_kernel_evolution", "run_search"]
