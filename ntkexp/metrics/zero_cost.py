"""The zero-cost proxies of Abdelfattah et al. (ICLR 2021) and NASWOT (Mellor et al.), on the probe batch.

grad_norm, snip, grasp and fisher use the batch cross-entropy with BN as configured (per-sample BN counts as train
mode for a batch loss); they score the Conv/Linear layers and sum over layers:

* grad_norm = sum_l ||dL/dW_l||_2;  snip = sum |dL/dW (.) W|;  grasp = -sum W (.) (H dL/dW) (Hessian-gradient
  product by double backward);  fisher = sum over layers and channels of 0.5 * mean_i (sum_spatial a (.) dL/da)^2,
  a the layer output.
* synflow = sum W (.) dR/dW with R = sum of the outputs for an all-ones input, in float64, with every weight
  replaced by its absolute value and BatchNorm bypassed (identity), on a copy of the network.
* jacob_cov (NASWOT v1) = -sum_j (log(v_j + k) + 1/(v_j + k)), v the eigenvalues of the correlation matrix of the
  per-sample input Jacobians of the summed outputs, k = 1e-5.
* naswot (NASWOT v2) = log|det K_H|, K_H[i, j] = number of ReLU units on which samples i and j agree.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ntkexp.metrics.base import MetricContext, register_metric
from ntkexp.metrics.shared import activation_codes, loss_gradients, weight_layers


@register_metric("grad_norm", direction=+1, needs=("loss_gradients",))
def grad_norm(ctx: MetricContext) -> float:
    _, grads, _ = loss_gradients(ctx)
    return float(sum(g.norm().item() for g in grads))


@register_metric("snip", direction=+1, needs=("loss_gradients",))
def snip(ctx: MetricContext) -> float:
    weights, grads, _ = loss_gradients(ctx)
    return float(sum((g * w).abs().sum().item() for w, g in zip(weights, grads)))


@register_metric("fisher", direction=+1, needs=("loss_gradients",))
def fisher(ctx: MetricContext) -> float:
    _, _, acts = loss_gradients(ctx)
    total = 0.0
    for act, grad in acts:
        prod = act * grad
        per_channel = prod.sum(dim=tuple(range(2, prod.ndim))) if prod.ndim > 2 else prod
        total += float(0.5 * per_channel.pow(2).mean(0).sum())
    return total


@register_metric("grasp", direction=+1, needs=())
def grasp(ctx: MetricContext) -> float:
    layers = weight_layers(ctx.model)
    weights = [m.weight for m in layers]
    y = ctx.y.to(ctx.x.device)
    with ctx.batch_mode(), torch.enable_grad():
        g = torch.autograd.grad(F.cross_entropy(ctx.model(ctx.x), y), weights, allow_unused=True)
        g = [torch.zeros_like(w) if gi is None else gi.detach() for w, gi in zip(weights, g)]
        grad_f = torch.autograd.grad(F.cross_entropy(ctx.model(ctx.x), y), weights, create_graph=True,
                                     allow_unused=True)
        z = sum((gf * gi).sum() for gf, gi in zip(grad_f, g) if gf is not None)
        if not isinstance(z, torch.Tensor) or not z.requires_grad:
            return 0.0
        hg = torch.autograd.grad(z, weights, allow_unused=True)
    return float(sum((-w.detach() * h).sum().item() for w, h in zip(weights, hg) if h is not None))


class _BypassBN(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _without_bn(model: nn.Module) -> nn.Module:
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, _BypassBN())
        else:
            _without_bn(child)
    return model


@register_metric("synflow", direction=+1, needs=())
def synflow(ctx: MetricContext) -> float:
    net = _without_bn(copy.deepcopy(ctx.model)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    layers = weight_layers(net)
    ones = torch.ones((1, *ctx.x.shape[1:]), dtype=torch.float64, device=ctx.x.device)
    with torch.enable_grad():
        grads = torch.autograd.grad(net(ones).sum(), [m.weight for m in layers], allow_unused=True)
    return float(sum((m.weight.detach() * g).sum().item() for m, g in zip(layers, grads) if g is not None))


@register_metric("jacob_cov", direction=+1, needs=())
def jacob_cov(ctx: MetricContext) -> float:
    x = ctx.x.detach().clone().requires_grad_(True)
    with ctx.batch_mode(), torch.enable_grad():
        (jac,) = torch.autograd.grad(ctx.model(x).sum(), x)
    corr = torch.corrcoef(jac.reshape(jac.shape[0], -1).to(torch.float64))
    if not torch.isfinite(corr).all():
        return float("nan")
    v = torch.linalg.eigvalsh(corr).clamp_min(0.0)
    k = 1e-5
    return float(-(torch.log(v + k) + 1.0 / (v + k)).sum())


@register_metric("naswot", direction=+1, needs=("activation_codes",))
def naswot(ctx: MetricContext) -> float:
    codes = activation_codes(ctx)
    agree = codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T
    sign, logdet = torch.linalg.slogdet(agree)
    return float(logdet) if sign > 0 else float("-inf")
