"""Short (and full) training of any search-space network with Lightning."""

from ntkexp.train.module import ClassifierModule, TrainConfig, evaluate_accuracy, fit

__all__ = ["ClassifierModule", "TrainConfig", "evaluate_accuracy", "fit"]
