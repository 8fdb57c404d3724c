"""Short training with a checkpoint cache: the state after t epochs is kept per (arch, scoring config, seed, t),
so asking for t' > t later continues from epoch t instead of starting again (LGA_3 after LGA_1)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import lightning as L
import torch
from torch import nn

from ntkexp.train.module import TrainConfig, fit
from ntkexp.train.tracking import KernelTracker

_EPOCH_FILE = re.compile(r"epoch_(\d+)\.ckpt$")


def cached_epochs(ckpt_dir: Path | None) -> list[int]:
    if ckpt_dir is None or not ckpt_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for p in ckpt_dir.iterdir() if (m := _EPOCH_FILE.search(p.name)))


def train_for(model: nn.Module, datamodule: L.LightningDataModule, cfg: TrainConfig, epochs: int,
              tracker: KernelTracker, ckpt_dir: Path | None) -> nn.Module:
    """Bring ``model`` (freshly initialised) to the state after ``epochs`` epochs, tracking with ``tracker``."""
    start = max([e for e in cached_epochs(ckpt_dir) if e <= epochs], default=None)
    if start is not None and start == epochs:  # the exact state is cached: load it, no training
        assert ckpt_dir is not None
        state = torch.load(ckpt_dir / f"epoch_{epochs}.ckpt", map_location=next(model.parameters()).device,
                           weights_only=False)
        model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
        tracker.load_state_dict(state["callbacks"][tracker.state_key])
        return model
    if start is None and 0 not in tracker.epochs:
        tracker.epochs = [0, *tracker.epochs]
    save_to = None
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        save_to = str(ckpt_dir / f".epoch_{epochs}.{os.getpid()}.tmp")
    fit(model, datamodule, cfg, callbacks=[tracker], max_epochs=epochs,
        ckpt_path=None if start is None else str(ckpt_dir / f"epoch_{start}.ckpt"), save_to=save_to)  # type: ignore[operator]
    if save_to is not None:
        os.replace(save_to, ckpt_dir / f"epoch_{epochs}.ckpt")  # type: ignore[operator]
    return model
