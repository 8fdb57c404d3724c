"""Training (Lightning, imported only when a name below other than ``TrainConfig`` is used)."""

from importlib import import_module
from typing import Any

from ntkexp.train.config import TrainConfig

#: name -> the module that defines it (loaded on first use: importing Lightning takes seconds)
_LAZY = {"ClassifierModule": "module", "evaluate_accuracy": "module", "fit": "module", "train_for": "short",
         "CurveRecorder": "tracking", "KernelTracker": "tracking", "kernel_correlation": "tracking",
         "relative_change": "tracking"}

__all__ = ["TrainConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"ntkexp.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ntkexp.train' has no attribute {name!r}")
