"""A Lightning callback that measures the metrics on a fixed probe batch at chosen epochs of training.

After each epoch listed in ``epochs`` (and at the start of training when it resumes from one of them) it computes the
configured metrics with the same engine and conventions as at initialisation, and the train loss and accuracy: the
mean over the last pass through the training set (the last ``pass_steps`` optimiser steps, on the augmented training
batches), whatever an epoch is and wherever training resumed (the per-step history travels with the checkpoints).
Each record names t in optimiser steps and images seen too (``step``, ``images``). Given the kernel at
initialisation (``theta0``), it also records the kernel correlation corr(Theta_0, Theta_t) (Pearson over all
entries) and the relative change ||Theta_t - Theta_0||_F / ||Theta_0||_F.
Nothing is restored from a checkpoint: every record is measured on the network in the state it describes.
"""

from __future__ import annotations

from typing import Any, Callable

import lightning as L
import numpy as np
import torch

from ntkexp.data.config import EpochPlan
from ntkexp.metrics import MetricContext, compute_metrics


def kernel_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of the entries of two kernels (NaN if either is constant; exactly 1 if they are equal)."""
    if torch.equal(a, b):
        return 1.0 if bool((a != a.reshape(-1)[0]).any()) else float("nan")
    x = a.reshape(-1).double() - a.double().mean()
    y = b.reshape(-1).double() - b.double().mean()
    denom = x.norm() * y.norm()
    return float("nan") if denom == 0 else float((x @ y) / denom)


def relative_change(theta_t: torch.Tensor, theta_0: torch.Tensor) -> float:
    norm0 = theta_0.double().norm()
    return float("nan") if norm0 == 0 else float((theta_t.double() - theta_0.double()).norm() / norm0)


class KernelTracker(L.Callback):
    """Records ``{epoch, <metric>..., flags[, kernel_corr, kernel_rel_diff], train_loss, train_acc}`` per epoch."""

    def __init__(self, make_context: Callable[[torch.nn.Module], MetricContext], metric_names: list[str],
                 epochs: list[int], theta0: torch.Tensor | None = None, plan: EpochPlan | None = None) -> None:
        """``make_context(model)``: the metric context of the network as it is now (the scorer's, the same one that
        scores at initialisation); ``plan``: how epochs count in steps and images (records get ``step`` and
        ``images``, and the train loss is the mean over the last pass)."""
        self.make_context, self.metric_names, self.plan = make_context, list(metric_names), plan
        self.history: list[tuple[float, float]] = []  # (loss, acc) of every optimiser step so far
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []  # the same, still on the device
        self.epochs = sorted(set(int(e) for e in epochs))
        self.theta0 = theta0
        self.records: list[dict[str, Any]] = []

    def measure(self, model: torch.nn.Module, epoch: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Measure ``model`` now and record it as ``epoch``; at epoch 0 its kernel becomes Theta_0."""
        ctx = self.make_context(model)
        values = compute_metrics(self.metric_names, ctx)
        record: dict[str, Any] = {"epoch": epoch, **values}
        if epoch == 0 and self.theta0 is None:
            self.theta0 = ctx.ntk().kernel.clone()
        if self.theta0 is not None:
            kernel = ctx.ntk().kernel
            record.update(kernel_corr=kernel_correlation(self.theta0, kernel),
                          kernel_rel_diff=relative_change(kernel, self.theta0))
        flags = set(ctx.flags)
        diverged = self.diverged_at()
        if diverged is not None:
            flags.add(f"diverged@{diverged}")
        record["flags"] = ";".join(sorted(flags))
        if self.plan is not None:
            record["step"], record["images"] = self.plan.steps(epoch), self.plan.images(epoch)
        record.update(extra or {"train_loss": float("nan"), "train_acc": float("nan")})
        self.records = [r for r in self.records if r["epoch"] != epoch] + [record]
        return record

    def diverged_at(self) -> int | None:
        """The first optimiser step (1-based) whose training loss was not finite, or None."""
        for step, (loss, _) in enumerate(self.steps_history(), start=1):
            if not np.isfinite(loss):
                return step
        return None

    def recorded(self, epoch: int) -> bool:
        return any(r["epoch"] == epoch for r in self.records)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch  # > 0 when training resumes from a checkpoint of that epoch
        if epoch in self.epochs and not self.recorded(epoch):
            self.measure(pl_module.model, epoch)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if isinstance(outputs, dict) and "loss" in outputs:
            self._pending.append((outputs["loss"].detach().float(), outputs["acc"].detach().float()))

    def steps_history(self) -> list[tuple[float, float]]:
        """(loss, acc) of every optimiser step so far (one synchronisation per call, not per step)."""
        if self._pending:
            self.history += [(float(loss), float(acc)) for loss, acc in self._pending]
            self._pending = []
        return self.history

    def recent_stats(self) -> dict[str, float]:
        """Mean train loss and accuracy (%) over the last pass through the training set (``pass_steps`` steps;
        every step so far when that is unset or fewer steps were run)."""
        pass_steps = self.plan.steps_per_pass if self.plan is not None else None
        history = self.steps_history()[-(pass_steps or len(self.history) or 1):]
        if not history:
            return {"train_loss": float("nan"), "train_acc": float("nan")}
        return {"train_loss": float(np.mean([h[0] for h in history])),
                "train_acc": 100.0 * float(np.mean([h[1] for h in history]))}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch in self.epochs:
            self.measure(pl_module.model, epoch, self.recent_stats())

    def stats_at(self, epoch: int) -> dict[str, float]:
        """The train stats recorded with ``epoch`` (empty if none)."""
        for r in self.records:
            if r["epoch"] == epoch:
                return {k: float(r[k]) for k in ("train_loss", "train_acc") if k in r}
        return {}


class CurveRecorder(L.Callback):
    """The training curve, step by step: {epoch, step, loss, acc (%)} appended to ``curve`` as training goes (the
    values stay on the device until each epoch ends, so recording costs no synchronisation per step)."""

    def __init__(self, curve: list[dict[str, Any]]) -> None:
        self.curve = curve
        self._pending: list[tuple[int, int, torch.Tensor, torch.Tensor]] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if isinstance(outputs, dict) and "loss" in outputs:
            self._pending.append((trainer.current_epoch, trainer.global_step, outputs["loss"].detach(),
                                  outputs.get("acc", torch.tensor(float("nan")))))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for epoch, step, loss, acc in self._pending:
            self.curve.append({"epoch": epoch + 1, "step": step, "loss": float(loss), "acc": 100.0 * float(acc)})
        self._pending.clear()
