"""A Lightning callback that measures the NTK metrics on a fixed probe batch at chosen epochs.

At epoch 0 (before the first step) and after each epoch listed in ``epochs`` it computes the configured metrics with
the same engine and conventions as at init, the kernel correlation corr(Theta_0, Theta_t) (Pearson over all
entries) and the relative kernel change ||Theta_t - Theta_0||_F / ||Theta_0||_F, and the epoch's train loss and
accuracy. Theta_0 and the records are part of the callback's checkpoint state, so a resumed run continues them.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from ntkexp.metrics import MetricContext, compute_metrics
from ntkexp.ntk import NTKConfig


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
    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int, ntk_cfg: NTKConfig,
                 metric_names: list[str], epochs: list[int], x_test: torch.Tensor | None = None,
                 y_test: torch.Tensor | None = None, seed: int = 0) -> None:
        self.x, self.y, self.num_classes = x, y, num_classes
        self.x_test, self.y_test, self.seed = x_test, y_test, seed
        self.ntk_cfg, self.metric_names, self.epochs = ntk_cfg, list(metric_names), sorted(set(int(e) for e in epochs))
        self.theta0: torch.Tensor | None = None
        self.records: list[dict[str, Any]] = []
        self.last_context: MetricContext | None = None

    def measure(self, model: torch.nn.Module, epoch: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        device = next(model.parameters()).device
        ctx = MetricContext(model, self.x.to(device), self.y, self.num_classes, self.ntk_cfg,
                            x_test=None if self.x_test is None else self.x_test.to(device), y_test=self.y_test,
                            seed=self.seed)
        values = compute_metrics(self.metric_names, ctx)
        kernel = ctx.ntk().kernel
        if self.theta0 is None:
            if epoch != 0:
                raise RuntimeError("the kernel at epoch 0 is needed before later epochs can be compared to it")
            self.theta0 = kernel.clone()
        record = {"epoch": epoch, **values, "kernel_corr": kernel_correlation(self.theta0, kernel),
                  "kernel_rel_diff": relative_change(kernel, self.theta0), "flags": ";".join(sorted(ctx.flags)),
                  **(extra or {})}
        self.records.append(record)
        self.last_context = ctx
        return record

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0 and self.theta0 is None:
            self.measure(pl_module.model, 0, {"train_loss": float("nan"), "train_acc": float("nan")})

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch in self.epochs:
            logged = trainer.callback_metrics
            extra = {"train_loss": float(logged.get("train/loss", np.nan)),
                     "train_acc": 100.0 * float(logged.get("train/acc", np.nan))}
            self.measure(pl_module.model, epoch, extra)

    def state_dict(self) -> dict[str, Any]:
        return {"theta0": self.theta0, "records": self.records}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.theta0, self.records = state["theta0"], list(state["records"])
