"""Metrics read off the empirical NTK at one point of training: F-Norm, Mean, NCN / condition number, LGA.

Definitions follow Mok et al. (CVPR 2022): ||Theta||_F, mu(Theta) = mean of all entries, NCN = -lambda_max/lambda_min
(TE-NAS's condition number, negated so that larger is better), and label-gradient alignment (their eq. 12)

    LGA = <Theta - mu(Theta), L - mu(L)> / (||Theta - mu(Theta)||_F ||L - mu(L)||_F),

with L_ij = +1 when samples i and j share a class and -1 otherwise.
"""

from __future__ import annotations

import torch

from ntkexp.metrics.base import SINGULAR_RTOL, MetricContext, register_metric


def label_matrix(y: torch.Tensor) -> torch.Tensor:
    """L_ij = +1 if y_i == y_j else -1 (float64)."""
    y = y.reshape(-1)
    return (y[:, None] == y[None, :]).to(torch.float64) * 2.0 - 1.0


def lga(kernel: torch.Tensor, y: torch.Tensor) -> float:
    """Equation (12); NaN when the kernel or the label matrix is constant (undefined alignment)."""
    theta = kernel.to(torch.float64)
    lab = label_matrix(y.to(theta.device))  # the kernel is on the CPU, the labels where the data lives
    tc = theta - theta.mean()
    lc = lab - lab.mean()
    denom = torch.linalg.norm(tc) * torch.linalg.norm(lc)
    if denom == 0 or not torch.isfinite(denom):
        return float("nan")
    return float((tc * lc).sum() / denom)


def condition_number(eig: torch.Tensor) -> float:
    """lambda_max / lambda_min; +inf for a singular or indefinite kernel (lambda_min <= rtol * lambda_max)."""
    if not torch.isfinite(eig).all():
        return float("nan")
    lmin, lmax = float(eig[0]), float(eig[-1])
    if lmax <= 0:
        return float("nan")  # zero (or negative) kernel: no condition number
    if lmin <= SINGULAR_RTOL * lmax:
        return float("inf")
    return lmax / lmin


@register_metric("fnorm", direction=+1, log_axis=True)
def fnorm(ctx: MetricContext) -> float:
    """Frobenius norm of the NTK."""
    return float(torch.linalg.norm(ctx.ntk().kernel))


@register_metric("mean", direction=+1, log_axis=True)
def mean(ctx: MetricContext) -> float:
    """Mean of all NTK entries (KNAS)."""
    return float(ctx.ntk().kernel.mean())


@register_metric("cond", direction=-1, log_axis=True, keep_infinite=True)
def cond(ctx: MetricContext) -> float:
    """Condition number lambda_max / lambda_min of the NTK (TE-NAS; smaller is better)."""
    value = condition_number(ctx.eigenvalues())
    if value == float("inf"):
        ctx.flags.add("singular")
    return value


@register_metric("ncn", direction=+1, log_axis=True, keep_infinite=True)
def ncn(ctx: MetricContext) -> float:
    """Negative condition number -lambda_max / lambda_min (larger is better)."""
    value = condition_number(ctx.eigenvalues())
    if value == float("inf"):
        ctx.flags.add("singular")
    return -value


@register_metric("lga", direction=+1)
def lga_metric(ctx: MetricContext) -> float:
    """Label-gradient alignment, eq. (12) of Mok et al."""
    return lga(ctx.ntk().kernel, ctx.y)
