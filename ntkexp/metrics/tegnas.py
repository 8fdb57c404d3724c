"""TE-NAS / TEG-NAS (Chen et al.): trainability = condition number (``cond``, in ntk_metrics), expressivity =
number of linear regions, generalization = NTK kernel-regression MSE with the last-layer NTK. Their sum of ranks is
the combination ``tegnas``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ntkexp.init import initialize
from ntkexp.metrics.base import InputRequest, MetricContext, register_metric
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


@dataclass
class LinearRegionsConfig:
    """How ``linear_regions`` counts (``metric.settings.linear_regions``). ``tenas``, TE-NAS's reference protocol: the
    distinct ReLU activation patterns over ``batches`` x ``inputs`` random ``crop`` x ``crop`` crops of training
    images, pooled, on the space's thin network where it has one (NAS-Bench-201: one cell of width 1 without the stem,
    on crops of one randomly picked channel) and on the network itself otherwise (crops of every channel; also after
    training). ``probe``: the distinct patterns among the probe batch on the network itself (at most the batch
    size)."""

    protocol: Literal["tenas", "probe"] = "tenas"
    inputs: int = 1000
    batches: int = 3
    crop: int = 3

    def __post_init__(self) -> None:
        if self.protocol not in ("tenas", "probe"):
            raise ValueError(f"metric.settings.linear_regions.protocol must be 'tenas' or 'probe', got "
                             f"{self.protocol!r}")
        if min(self.inputs, self.batches, self.crop) < 1:
            raise ValueError("metric.settings.linear_regions inputs, batches and crop must be >= 1")


def tenas_crops(images: torch.Tensor, cfg: LinearRegionsConfig, channels: int, seed: int, repeat: int) -> torch.Tensor:
    """TE-NAS's inputs for counting linear regions: ``batches`` x ``inputs`` random ``crop`` x ``crop`` crops of
    ``images`` (N, C, H, W), each with ``channels`` of the image's channels (picked at random); fixed by (seed,
    repeat); on the images' device."""
    n, c, h, w = images.shape
    if cfg.crop > min(h, w):
        raise ValueError(f"metric.settings.linear_regions.crop={cfg.crop} is larger than the {h}x{w} images")
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, repeat, 7]).generate_state(1)[0]))
    total = cfg.batches * cfg.inputs
    picked = torch.randint(0, n, (total,), generator=gen)
    top = torch.randint(0, h - cfg.crop + 1, (total,), generator=gen)
    left = torch.randint(0, w - cfg.crop + 1, (total,), generator=gen)
    picks = torch.argsort(torch.rand(total, c, generator=gen), dim=1)[:, :channels].sort(dim=1).values
    rows = (top[:, None] + torch.arange(cfg.crop))[:, None, :, None]
    cols = (left[:, None] + torch.arange(cfg.crop))[:, None, None, :]
    crops = images.cpu()[picked[:, None, None, None], picks[:, :, None, None], rows, cols]
    return crops.to(images.device).contiguous()


def region_inputs(req: InputRequest) -> tuple[nn.Module | None, torch.Tensor] | None:
    """Under the ``tenas`` protocol: the network to count on (the space's thin network at initialisation, initialised
    with Kaiming fan_in as TE-NAS's forward passes are, whatever the NTK's init; None: the network itself) and the
    pooled crops; None under ``probe`` (the probe batch)."""
    cfg: LinearRegionsConfig = req.settings
    if cfg.protocol != "tenas":
        return None
    thin = None
    if not req.trained and req.space is not None:
        torch.manual_seed(req.init_seed + 1)
        thin = req.space.thin_network(req.arch, req.num_classes)
        if thin is not None:
            thin = initialize(thin, dataclasses.replace(req.init, mode="fan_in")).to(req.device)
    images = req.train_images()
    crops = tenas_crops(images, cfg, 1 if thin is not None else req.in_channels, req.seed, req.repeat)
    return thin, crops.to(req.device)


@register_metric("linear_regions", direction=+1, needs=("activation_codes",), settings=LinearRegionsConfig,
                 inputs=region_inputs)
def linear_regions(ctx: MetricContext) -> float:
    """The empirical number of linear regions (TEG-NAS eq. 6): distinct ReLU activation patterns over many inputs.
    Under ``protocol=tenas`` (the default) TE-NAS's protocol: pooled random crops on the thin network (see
    :class:`LinearRegionsConfig`); under ``probe`` the probe batch on the network itself (so at most the batch
    size)."""
    prepared = ctx.inputs_of("linear_regions")
    if prepared is not None:
        thin, crops = prepared
        model = thin if thin is not None else ctx.model
        with bn_convention(model, ctx.batch_bn_mode):
            return float(count_patterns(model, crops, ctx.settings_of("linear_regions").inputs))
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
