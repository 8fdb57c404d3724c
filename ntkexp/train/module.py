"""A LightningModule that trains a network with SGD + momentum and a cosine schedule on cross-entropy."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


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


class ClassifierModule(L.LightningModule):
    def __init__(self, model: nn.Module, cfg: TrainConfig, channels_last: bool = False) -> None:
        super().__init__()
        self.model, self.cfg, self.channels_last = model, cfg, channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": acc}, on_step=False, on_epoch=True, batch_size=len(y))
        return {"loss": loss, "acc": acc.detach()}

    def configure_optimizers(self) -> Any:
        c = self.cfg
        opt: torch.optim.Optimizer
        if c.optimizer == "rmsprop":
            opt = torch.optim.RMSprop(self.model.parameters(), lr=c.lr, alpha=c.rmsprop_alpha, eps=c.rmsprop_eps,
                                      momentum=c.momentum, weight_decay=c.weight_decay)
        else:
            opt = torch.optim.SGD(self.model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
                                  nesterov=c.nesterov and c.momentum > 0)
        if c.schedule == "constant":
            return opt
        if c.schedule != "cosine":
            raise ValueError(f"trainer.schedule must be 'cosine' or 'constant', got {c.schedule!r}")
        epochs = max(1, int(self.trainer.max_epochs or 1))
        steps = c.schedule_steps or self.trainer.estimated_stepping_batches / epochs * (c.schedule_epochs or epochs)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(steps)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def make_trainer(cfg: TrainConfig, max_epochs: int, callbacks: list[L.Callback] | None = None, logger: Any = False,
                 device_type: str = "cpu") -> L.Trainer:
    accelerator = cfg.accelerator if cfg.accelerator != "auto" else ("gpu" if device_type == "cuda" else "cpu")
    return L.Trainer(max_epochs=max_epochs, accelerator=accelerator, devices=1,
                     precision=cfg.resolved_precision(device_type), logger=logger, callbacks=callbacks or [],
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     num_sanity_val_steps=0, limit_val_batches=0, deterministic=False)


def fit(model: nn.Module, datamodule: L.LightningDataModule, cfg: TrainConfig, max_epochs: int,
        callbacks: list[L.Callback] | None = None, logger: Any = False, ckpt_path: str | None = None) -> L.Trainer:
    """Train ``model`` in place up to ``max_epochs``, resuming from ``ckpt_path`` if given; returns the trainer."""
    device_type = next(model.parameters()).device.type
    module = ClassifierModule(model, cfg, channels_last=cfg.use_channels_last(device_type))
    trainer = make_trainer(cfg, max_epochs, callbacks, logger, device_type=device_type)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        warnings.filterwarnings("ignore", ".*TPU available.*")
        warnings.filterwarnings("ignore", ".*exceeds the .max_epochs.*")
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    if module.channels_last:
        model.to(memory_format=torch.contiguous_format)
    return trainer


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy (%) of ``model`` in eval mode on (x, y)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == y[start : start + batch_size].cpu()).sum())
    model.train(was_training)
    return 100.0 * correct / max(1, len(y))
