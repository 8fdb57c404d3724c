"""Config group ``trainer`` (no Lightning here: the schema loads without it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` instruction flags), read
    from ``cpuinfo``; False where that cannot be read (other operating systems): there bfloat16 autocast would be
    emulated, slower than float32, so ``precision=auto`` keeps float32."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


@dataclass
class TrainConfig:
    """Config group ``trainer``: the optimisation protocol (NB201 used lr 0.1, momentum 0.9, wd 5e-4, nesterov,
    cosine over 200 epochs of 196 steps, batch 256), and what one epoch (the unit of ``t``) is. How many epochs to
    train is the task's (the ``t`` of ``metric.train_epochs``, ``task.track_epochs``).

    Training runs on full batches cut from one stream of reshuffled passes over the training set, indexed by the
    optimiser step, so the images seen after ``s`` steps do not depend on how steps are grouped into epochs:
    ``epoch_steps=1`` counts ``t`` in optimiser steps and trains exactly ``t`` steps."""

    optimizer: str = "sgd"  # sgd | rmsprop
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True  # sgd only
    rmsprop_alpha: float = 0.9  # rmsprop only: the squared-gradient average's decay (TensorFlow's ``decay``)
    rmsprop_eps: float = 1.0  # rmsprop only (NAS-Bench-101 used TensorFlow's epsilon=1.0)
    schedule: str = "cosine"  # cosine | constant
    schedule_epochs: int | None = None  # length of the cosine cycle in epochs (the benchmark's 200); None = trained
    schedule_steps: int | None = None  # the cosine cycle in optimiser steps (wins over schedule_epochs)
    batch_size: int | None = None  # the training batch (the protocol's; NDS 128); None = the data set's default
    # the images one epoch sees: None = the training set's size; 50000 makes an epoch of any training set the length
    # of a CIFAR-10 epoch (196 steps at batch 256)
    epoch_images: int | None = None
    epoch_steps: int | None = None  # optimiser steps per epoch, exactly (wins over epoch_images); 1: t in steps
    accelerator: str = "auto"
    # auto: bf16-mixed on a GPU and on a CPU with native bfloat16 instructions, else 32-true; or any Lightning precision
    precision: str = "auto"
    channels_last: bool | None = None  # None: yes (faster for these conv nets on this CPU and on GPUs alike)

    def __post_init__(self) -> None:
        for name in ("lr", "momentum", "weight_decay", "rmsprop_alpha", "rmsprop_eps"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                raise ValueError(f"trainer.{name} must be a finite number {'> 0' if name == 'lr' else '>= 0'}, "
                                 f"got {value}")
        if self.optimizer not in ("sgd", "rmsprop"):
            raise ValueError(f"trainer.optimizer must be 'sgd' or 'rmsprop', got {self.optimizer!r}")
        for name in ("batch_size", "epoch_images", "epoch_steps", "schedule_steps", "schedule_epochs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"trainer.{name} must be >= 1 or null, got {value}")

    def resolved_precision(self, device_type: str) -> str:
        """The Lightning precision used on ``device_type``: ``auto`` is bf16-mixed on a GPU and on a CPU that has
        native bfloat16 instructions (checked), 32-true elsewhere."""
        if self.precision != "auto":
            return self.precision
        if device_type == "cuda":
            return "bf16-mixed"
        return "bf16-mixed" if device_type == "cpu" and cpu_has_native_bf16() else "32-true"

    def use_channels_last(self, device_type: str) -> bool:
        return True if self.channels_last is None else bool(self.channels_last)
