"""TE-NAS / TEG-NAS (Chen et al.): trainability = condition number (``cond``, in ntk_metrics), expressivity =
number of linear regions, generalization = NTK kernel-regression MSE with the last-layer NTK. Their sum of ranks is
the combination ``tegnas``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ntkexp.metrics.base import MetricContext, register_metric
from ntkexp.metrics.combine import register_combination
from ntkexp.metrics.shared import activation_codes, joint_kernel, kernel_regression, relu_inputs
from ntkexp.ntk import bn_convention


def count_patterns(model: torch.nn.Module, inputs: torch.Tensor, chunk: int) -> int:
    """Distinct ReLU activation patterns (over every ReLU unit) of ``model`` over ``inputs``, forwarded ``chunk`` at a
    time (with train-mode BN each chunk is normalised by its own statistics, as TE-NAS's batches are)."""
    codes = []
    with relu_inputs(model) as seen, torch.no_grad():
        for start in range(0, inputs.shape[0], chunk):
            seen.clear()
            batch = inputs[start:start + chunk]
            model(batch)
            if seen:
                codes.append(torch.cat([t.reshape(t.shape[0], -1) > 0 for t in seen], 1).cpu())
    if not codes:
        return 1  # no ReLU: one linear piece
    return int(torch.unique(torch.cat(codes), dim=0).shape[0])


@register_metric("linear_regions", direction=+1, needs=("activation_codes",))
def linear_regions(ctx: MetricContext) -> float:
    """The empirical number of linear regions (TEG-NAS eq. 6): distinct ReLU activation patterns over many inputs.
    Under ``metric.linear_regions.protocol=tenas`` (the default) TE-NAS's protocol: pooled random crops on the thin
    network (see :class:`~ntkexp.metrics.base.LinearRegionsConfig`); under ``probe`` the probe batch on the network
    itself (so at most the batch size)."""
    if ctx.region_inputs is not None:
        model = ctx.region_model if ctx.region_model is not None else ctx.model
        with bn_convention(model, ctx.batch_bn_mode):
            return float(count_patterns(model, ctx.region_inputs, ctx.settings.linear_regions.inputs))
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
