"""A LightningModule that trains a network with SGD + momentum and a cosine schedule on cross-entropy."""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from ntkexp.data.arrays import ArrayData
from ntkexp.data.datamodule import ArrayDataModule
from ntkexp.train.config import TrainConfig, cpu_has_native_bf16  # noqa: F401 (re-exported)


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


def fit(model: nn.Module, datamodule: L.LightningDataModule | ArrayData, cfg: TrainConfig, max_epochs: int,
        callbacks: list[L.Callback] | None = None, logger: Any = False, ckpt_path: str | None = None) -> L.Trainer:
    """Train ``model`` in place up to ``max_epochs``, resuming from ``ckpt_path`` if given; returns the trainer.
    ``datamodule``: a LightningDataModule, or a run's :class:`ArrayData` (trained on through Lightning's view)."""
    if isinstance(datamodule, ArrayData):
        datamodule = ArrayDataModule.of(datamodule)
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
