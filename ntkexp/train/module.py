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
    precision: str = "32-true"
    limit_train_batches: float | int | None = None


class ClassifierModule(L.LightningModule):
    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
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
        steps = self.trainer.estimated_stepping_batches * (c.schedule_epochs or c.epochs) / max(1, c.epochs)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(steps)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def make_trainer(cfg: TrainConfig, callbacks: list[L.Callback] | None = None, logger: Any = False,
                 max_epochs: int | None = None) -> L.Trainer:
    kwargs: dict[str, Any] = {}
    if cfg.limit_train_batches is not None:
        kwargs["limit_train_batches"] = cfg.limit_train_batches
    return L.Trainer(max_epochs=cfg.epochs if max_epochs is None else max_epochs, accelerator=cfg.accelerator,
                     devices=1, precision=cfg.precision, logger=logger, callbacks=callbacks or [],
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     num_sanity_val_steps=0, limit_val_batches=0, deterministic=False, **kwargs)


def fit(model: nn.Module, datamodule: L.LightningDataModule, cfg: TrainConfig,
        callbacks: list[L.Callback] | None = None, logger: Any = False) -> ClassifierModule:
    """Train ``model`` in place for ``cfg.epochs`` epochs; returns the LightningModule wrapping it."""
    module = ClassifierModule(model, cfg)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        warnings.filterwarnings("ignore", ".*TPU available.*")
        make_trainer(cfg, callbacks, logger).fit(module, datamodule=datamodule)
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
