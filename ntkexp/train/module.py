"""A LightningModule that trains a network with SGD + momentum and a cosine schedule on cross-entropy."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TrainConfig:
    """Config group ``trainer`` (the optimisation protocol; NB201 used lr 0.1, momentum 0.9, wd 5e-4, nesterov)."""

    epochs: int = 1
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    schedule: str = "cosine"  # cosine | constant
    schedule_epochs: int | None = None  # length of the cosine cycle (the benchmark's 200); None = epochs
    accelerator: str = "auto"
    precision: str = "auto"  # auto: bf16-mixed on a GPU, 32-true on the CPU; or any Lightning precision
    channels_last: bool | None = None  # None: on a GPU only
    limit_train_batches: float | int | None = None

    def resolved_precision(self, device_type: str) -> str:
        if self.precision != "auto":
            return self.precision
        return "bf16-mixed" if device_type == "cuda" else "32-true"

    def use_channels_last(self, device_type: str) -> bool:
        return device_type == "cuda" if self.channels_last is None else bool(self.channels_last)


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
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.model(x)
        self.log_dict({"val/loss": F.cross_entropy(logits, y), "val/acc": (logits.argmax(1) == y).float().mean()},
                      on_step=False, on_epoch=True, batch_size=len(y))

    def configure_optimizers(self) -> Any:
        c = self.cfg
        opt = torch.optim.SGD(self.model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
                              nesterov=c.nesterov and c.momentum > 0)
        if c.schedule == "constant":
            return opt
        if c.schedule != "cosine":
            raise ValueError(f"trainer.schedule must be 'cosine' or 'constant', got {c.schedule!r}")
        epochs = max(1, int(self.trainer.max_epochs or 1))
        steps = self.trainer.estimated_stepping_batches / epochs * (c.schedule_epochs or epochs)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(steps)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def make_trainer(cfg: TrainConfig, callbacks: list[L.Callback] | None = None, logger: Any = False,
                 max_epochs: int | None = None, device_type: str = "cpu") -> L.Trainer:
    kwargs: dict[str, Any] = {}
    if cfg.limit_train_batches is not None:
        kwargs["limit_train_batches"] = cfg.limit_train_batches
    accelerator = cfg.accelerator if cfg.accelerator != "auto" else ("gpu" if device_type == "cuda" else "cpu")
    return L.Trainer(max_epochs=cfg.epochs if max_epochs is None else max_epochs, accelerator=accelerator,
                     devices=1, precision=cfg.resolved_precision(device_type), logger=logger, callbacks=callbacks or [],
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     num_sanity_val_steps=0, limit_val_batches=0, deterministic=False, **kwargs)


def fit(model: nn.Module, datamodule: L.LightningDataModule, cfg: TrainConfig,
        callbacks: list[L.Callback] | None = None, logger: Any = False, max_epochs: int | None = None,
        ckpt_path: str | None = None, save_to: str | None = None) -> ClassifierModule:
    """Train ``model`` in place up to ``max_epochs`` (default ``cfg.epochs``), resuming from ``ckpt_path`` if given
    and saving the final state (weights, optimiser, schedule, callback states) to ``save_to``."""
    device_type = next(model.parameters()).device.type
    module = ClassifierModule(model, cfg, channels_last=cfg.use_channels_last(device_type))
    trainer = make_trainer(cfg, callbacks, logger, max_epochs=max_epochs, device_type=device_type)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        warnings.filterwarnings("ignore", ".*TPU available.*")
        warnings.filterwarnings("ignore", ".*exceeds the .max_epochs.*")
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    if save_to is not None:
        trainer.save_checkpoint(save_to)
    if module.channels_last:
        model.to(memory_format=torch.contiguous_format)
    return module


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
