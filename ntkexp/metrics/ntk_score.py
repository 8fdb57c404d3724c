"""NTK-score (trainability S_t, expressivity S_e, generalization S_g), combined by Borda count as ``ntk_score``.

* S_t = (sum of the ceil(sqrt(n)) largest NTK eigenvalues) / (sum of all), on the probe batch. A spectrum
  concentrated on few directions is the ill-conditioning TE-NAS penalises, so smaller is taken as better here.
* S_e = -CE(softmax f(X_test), softmax f(X_test')): f are the NTK kernel-regression outputs (full NTK) for the held-out
  batch and for the same batch plus N(0, 1e-4) noise. The paper states both directions: its eq. 9 says "the smaller
  the S_e, the stronger the expressivity", its Sec. 5.3 that "a higher S_e indicates the network's enhanced ability
  to differentiate between similar samples ... leading to higher accuracy". ntkexp follows eq. 9 (direction -1): on
  real NAS-Bench-201 networks and CIFAR-10 images that is the orientation that correlates positively with accuracy,
  as the paper's reported tau (0.514) is positive (measured in docs/RESULTS.md).
* S_g = ||f(X_test) - Y_test||_2 (Frobenius norm over the held-out batch; smaller is better).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ntkexp.metrics.base import MetricContext, register_metric
from ntkexp.metrics.combine import register_combination
from ntkexp.metrics.shared import joint_kernel, kernel_regression

PERTURB_STD = 1e-2  # N(0, 1e-4): variance 1e-4


def top_eigen_fraction(eigenvalues: torch.Tensor) -> float:
    """sum of the ceil(sqrt(n)) largest eigenvalues / sum of all (eigenvalues in any order)."""
    lam = torch.sort(eigenvalues.to(torch.float64), descending=True).values
    total = lam.sum()
    if not torch.isfinite(total) or total <= 0:
        return float("nan")
    return float(lam[: math.ceil(math.sqrt(len(lam)))].sum() / total)


@register_metric("s_t", direction=-1)
def s_t(ctx: MetricContext) -> float:
    return top_eigen_fraction(ctx.eigenvalues())


@register_metric("s_e", direction=-1, needs=("joint_kernel",))
def s_e(ctx: MetricContext) -> float:
    k_clean, n = joint_kernel(ctx)
    k_noisy, _ = joint_kernel(ctx, perturb_std=PERTURB_STD)
    f_clean = kernel_regression(k_clean, n, ctx.y, ctx.num_classes)
    f_noisy = kernel_regression(k_noisy, n, ctx.y, ctx.num_classes)
    cross_entropy = -(F.softmax(f_clean, dim=1) * F.log_softmax(f_noisy, dim=1)).sum(1).mean()
    return float(-cross_entropy)


@register_metric("s_g", direction=-1, needs=("joint_kernel",))
def s_g(ctx: MetricContext) -> float:
    kernel, n = joint_kernel(ctx)
    _, y_test = ctx.held_out()
    pred = kernel_regression(kernel, n, ctx.y, ctx.num_classes)
    return float((pred - F.one_hot(y_test.cpu().long(), ctx.num_classes).to(torch.float64)).norm())


register_combination("ntk_score", ("s_t", "s_e", "s_g"), "borda")
