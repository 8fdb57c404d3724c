"""Computations several metrics share, each done once per arch through ``MetricContext.cached``."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ntkexp.metrics.base import MetricContext
from ntkexp.ntk import empirical_ntk


def joint_kernel(ctx: MetricContext, params: str | None = None, perturb_std: float = 0.0) -> tuple[torch.Tensor, int]:
    """NTK over [x_train; x_test (+ N(0, perturb_std^2) noise)] under the context's conventions (``params`` may
    override the parameter subset); returns (kernel, n_train). With train-mode BN the statistics are those of the
    joint batch."""

    def compute() -> tuple[torch.Tensor, int]:
        x_test, _ = ctx.held_out()
        x_test = x_test.to(ctx.x.device)
        if perturb_std > 0:
            gen = torch.Generator().manual_seed(ctx.seed + 1)
            x_test = x_test + perturb_std * torch.randn(x_test.shape, generator=gen).to(x_test)
        cfg = ctx.ntk_cfg if params is None else dataclasses.replace(ctx.ntk_cfg, params=params)
        return empirical_ntk(ctx.model, torch.cat([ctx.x, x_test]), cfg).kernel, ctx.x.shape[0]

    return ctx.cached(("joint_kernel", params, perturb_std), compute)


def kernel_regression(kernel: torch.Tensor, n_train: int, y_train: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Predictions Theta(test, train) Theta(train, train)^+ Y_train for one-hot Y (pseudo-inverse: a singular
    train kernel does not fail)."""
    k_tt = kernel[:n_train, :n_train]
    k_st = kernel[n_train:, :n_train]
    onehot = F.one_hot(y_train.cpu().long(), num_classes).to(torch.float64)
    return k_st @ torch.linalg.pinv(k_tt, hermitian=True, rtol=1e-12) @ onehot


@contextlib.contextmanager
def relu_inputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the input of every nn.ReLU during the forward passes inside the block."""
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


def activation_codes(ctx: MetricContext) -> torch.Tensor:
    """(B, units) binary ReLU activation pattern of each probe sample (1 where the ReLU input is > 0)."""

    def compute() -> torch.Tensor:
        with ctx.batch_mode(), relu_inputs(ctx.model) as seen, torch.no_grad():
            if ctx.ntk_cfg.bn_mode == "per_sample":
                for i in range(ctx.x.shape[0]):
                    ctx.model(ctx.x[i : i + 1])
                per_relu = len(seen) // ctx.x.shape[0]
                rows = [torch.cat([t.reshape(1, -1) for t in seen[i * per_relu : (i + 1) * per_relu]], 1)
                        for i in range(ctx.x.shape[0])]
                codes = torch.cat(rows)
            else:
                ctx.model(ctx.x)
                codes = torch.cat([t.reshape(t.shape[0], -1) for t in seen], 1)
        return (codes > 0).to(torch.float64).cpu()

    return ctx.cached("activation_codes", compute)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The Conv/Linear layers whose weights the zero-cost proxies score."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]


def loss_gradients(ctx: MetricContext) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
    """One backward pass of the batch cross-entropy: (weights, their gradients, [(layer output, its gradient)])
    for every Conv/Linear layer; BN as the context's convention (per-sample BN counts as train mode here)."""

    def compute() -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
        layers = weight_layers(ctx.model)
        outputs: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda mod, inp, out: outputs.append(out)) for m in layers]
        try:
            with ctx.batch_mode(), torch.enable_grad():
                loss = F.cross_entropy(ctx.model(ctx.x), ctx.y.to(ctx.x.device))
                weights = [m.weight for m in layers]
                grads = torch.autograd.grad(loss, weights + outputs, allow_unused=True)
        finally:
            for h in hooks:
                h.remove()
        w_grads = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads[: len(weights)])]
        act_grads = [(o.detach(), torch.zeros_like(o) if g is None else g)
                     for o, g in zip(outputs, grads[len(weights):])]
        return [w.detach() for w in weights], w_grads, act_grads

    return ctx.cached("loss_gradients", compute)
