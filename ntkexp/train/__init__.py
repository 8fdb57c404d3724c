"""Short (and full) training of any search-space network with Lightning."""

from ntkexp.train.module import ClassifierModule, TrainConfig, evaluate_accuracy, fit
from ntkexp.train.short import train_for
from ntkexp.train.tracking import CurveRecorder, KernelTracker, kernel_correlation, relative_change

__all__ = ["ClassifierModule", "CurveRecorder", "KernelTracker", "TrainConfig", "evaluate_accuracy", "fit", "kernel_correlation",
           "relative_change", "train_for"]
