"""Short training with a checkpoint cache: the full training state after each epoch that was asked for is kept per
(arch, training conventions), so asking for a later epoch continues from the nearest earlier one instead of starting
again (LGA_3 after LGA_1), and asking for a kept epoch trains nothing."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from ntkexp.data.arrays import ArrayData
from ntkexp.train.module import TrainConfig, fit
from ntkexp.train.tracking import CurveRecorder, KernelTracker

_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.ckpt$")
TRAIN_STATS_KEY = "ntkexp_train_stats"
log = logging.getLogger("ntkexp")


def cached_epochs(ckpt_dir: Path | None) -> list[int]:
    if ckpt_dir is None or not ckpt_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for p in ckpt_dir.iterdir() if (m := _EPOCH_FILE.match(p.name)))


class EpochCheckpoints(L.Callback):
    """Save the whole training state (weights, optimiser, schedule, loop) after each epoch in ``epochs``, atomically,
    with the tracker's train stats for that epoch and its per-step history."""

    def __init__(self, ckpt_dir: Path, epochs: list[int], tracker: KernelTracker) -> None:
        self.ckpt_dir, self.epochs, self.tracker = ckpt_dir, set(epochs), tracker
        self._stats: dict[str, Any] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        final = self.ckpt_dir / f"epoch_{epoch}.ckpt"
        if epoch not in self.epochs or final.exists():
            return
        self._stats = {**self.tracker.stats_at(epoch), "history": list(self.tracker.steps_history())}
        tmp = self.ckpt_dir / f".epoch_{epoch}.{os.getpid()}.tmp"
        trainer.save_checkpoint(tmp)
        os.replace(tmp, final)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[TRAIN_STATS_KEY] = dict(self._stats)


def readable_checkpoint(path: Path, device: torch.device) -> dict[str, Any] | None:
    """The training state kept at ``path``, or None (with a warning naming it, and the file removed so that it is
    trained again) when it cannot be read: a truncated or damaged file must not fail its arch on every rerun."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        if not isinstance(state, dict) or "state_dict" not in state:
            raise ValueError("no state_dict in it")
        return state
    except Exception as err:  # noqa: BLE001 - any unreadable file is handled alike: named, removed, retrained
        log.warning("the kept training state %s cannot be read (%s: %s); it is removed and trained again", path,
                    type(err).__name__, str(err).splitlines()[0][:200] if str(err) else "")
        path.unlink(missing_ok=True)
        return None


def train_for(model: nn.Module, datamodule: L.LightningDataModule | ArrayData, cfg: TrainConfig, tracker: KernelTracker,
              ckpt_dir: Path | None, curve: list[dict[str, Any]] | None = None) -> nn.Module:
    """Bring ``model`` (freshly initialised) through the epochs ``tracker.epochs`` (those > 0), measuring at each;
    resume from the latest kept state at or before the first of them, keep a state at each of them. The steps
    trained here are appended to ``curve``."""
    wanted = [e for e in tracker.epochs if e > 0]
    if not wanted:
        return model
    ckpt_path, start, state = None, None, None
    for epoch in sorted((e for e in cached_epochs(ckpt_dir) if e <= wanted[0]), reverse=True):
        assert ckpt_dir is not None
        path = ckpt_dir / f"epoch_{epoch}.ckpt"
        state = readable_checkpoint(path, next(model.parameters()).device)
        if state is not None:
            ckpt_path, start = str(path), epoch
            break
    if start is not None and state is not None:
        model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
        kept = dict(state.get(TRAIN_STATS_KEY) or {})
        tracker.history = [tuple(h) for h in kept.pop("history", [])]  # type: ignore[misc]
        if start in wanted:  # measured on the kept state, with that epoch's train stats
            tracker.measure(model, start, kept or None)
        if start == wanted[-1]:
            return model  # nothing left to train
    callbacks: list[L.Callback] = [tracker]
    if curve is not None:
        callbacks.append(CurveRecorder(curve))
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        callbacks.append(EpochCheckpoints(ckpt_dir, wanted, tracker))
    fit(model, datamodule, cfg, max_epochs=wanted[-1], callbacks=callbacks, ckpt_path=ckpt_path)
    return model
