"""TE-NAS / TEG-NAS (Chen et al.): trainability = condition number (``cond``, in ntk_metrics), expressivity =
number of linear regions, generalization = NTK kernel-regression MSE with the last-layer NTK. Their sum of ranks is
the combination ``tegnas``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ntkexp.metrics.base import MetricContext, register_metric
from ntkexp.metrics.combine import register_combination
from ntkexp.metrics.shared import activation_codes, joint_kernel, kernel_regression


@register_metric("linear_regions", direction=+1, needs=("activation_codes",))
def linear_regions(ctx: MetricContext) -> float:
    """Number of distinct ReLU activation patterns (over every ReLU unit of the network) among the probe inputs,
    the empirical count of linear regions the batch falls in (TEG-NAS eq. 6; at most the batch size)."""
    codes = activation_codes(ctx)
    return float(torch.unique(codes, dim=0).shape[0])


@register_metric("ntk_mse", direction=-1, needs=("joint_kernel_last_layer",))
def ntk_mse(ctx: MetricContext) -> float:
    """TEG-NAS eqs. 8-9: predict the held-out batch's one-hot labels by kernel regression with the last-layer NTK
    fitted on the probe batch; mean over held-out samples of ||y_hat - y||_2 (smaller is better)."""
    kernel, n = joint_kernel(ctx, params="last_layer")
    _, y_test = ctx.held_out()
    pred = kernel_regression(kernel, n, ctx.y, ctx.num_classes)
    target = F.one_hot(y_test.cpu().long(), ctx.num_classes).to(torch.float64)
    return float((pred - target).norm(dim=1).mean())


register_combination("tegnas", ("cond", "linear_regions", "ntk_mse"), "sum_of_ranks")
