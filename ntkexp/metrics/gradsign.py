"""GradSign (Zhang & Jia): sum over parameters k of |sum over samples i of sign(d loss_i / d theta_k)|.

The per-sample loss gradients are rows of the same Jacobian engine as the NTK (``ntkexp.ntk.jacobian`` with output
weights dloss_i/dlogits_i = softmax(f(x_i)) - onehot(y_i)), exact in every BN convention. Which gradients: by default
those of GradSign's reference code, one forward pass per sample in train mode (``per_sample`` BN) and the Conv/Linear
weights only (``metric.settings.gradsign``; ``ntk`` there follows the NTK's convention instead).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ntkexp.metrics.base import MetricContext, register_metric
from ntkexp.ntk import BN_MODES, PARAM_SUBSETS, jacobian


@dataclass
class GradSignConfig:
    """The gradients GradSign's signs are taken of (``metric.settings.gradsign``). The defaults are its reference
    code's: one forward pass per sample (train-mode BN on the sample alone: ``per_sample``) and the Conv/Linear
    weights only; ``ntk`` follows the NTK's convention instead."""

    params: str = "conv_linear_weights"  # a parameter subset of the NTK engine, or ntk
    bn_mode: str = "per_sample"  # train | eval | per_sample, or ntk

    def __post_init__(self) -> None:
        if self.params not in (*PARAM_SUBSETS, "ntk"):
            raise ValueError(f"metric.settings.gradsign.params must be one of {', '.join((*PARAM_SUBSETS, 'ntk'))}")
        if self.bn_mode not in (*BN_MODES, "ntk"):
            raise ValueError(f"metric.settings.gradsign.bn_mode must be one of {', '.join((*BN_MODES, 'ntk'))}")


def gradsign_from_gradients(per_sample: dict[str, torch.Tensor]) -> float:
    """sum_k |sum_i sign(g[i, k])| for per-sample gradients {name: (B, numel)}."""
    return float(sum(torch.sign(g).sum(0).abs().sum().item() for g in per_sample.values()))


def per_sample_loss_gradients(ctx: MetricContext) -> dict[str, torch.Tensor]:
    y = ctx.y.to(ctx.x.device)

    def weights(logits: torch.Tensor) -> torch.Tensor:  # dCE(f_i, y_i)/df_i
        return F.softmax(logits, dim=1) - F.one_hot(y, logits.shape[1]).to(logits.dtype)

    settings = ctx.settings_of("gradsign")
    cfg = dataclasses.replace(ctx.ntk_cfg,
                              params=ctx.ntk_cfg.params if settings.params == "ntk" else settings.params,
                              bn_mode=ctx.ntk_cfg.bn_mode if settings.bn_mode == "ntk" else settings.bn_mode)
    grads, _ = jacobian(ctx.model, ctx.x, cfg, weights=weights)
    return grads


@register_metric("gradsign", direction=+1, needs=("per_sample_loss_gradients",), settings=GradSignConfig)
def gradsign(ctx: MetricContext) -> float:
    return gradsign_from_gradients(ctx.cached("per_sample_loss_gradients", lambda: per_sample_loss_gradients(ctx)))
