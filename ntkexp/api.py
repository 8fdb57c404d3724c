"""ntkexp as a library: the kernel and the metrics of any ``torch.nn.Module``, with no config, benchmark or run.

    import ntkexp
    theta = ntkexp.empirical_ntk(model, images, bn_mode="per_sample")        # (B, B) float64 tensor
    result = ntkexp.score(model, images, labels, metrics=["lga", "ncn"])    # values, flags and conventions

Every convention the papers disagree on is an argument with the framework's default, and :func:`score` returns it
with the values (``result.conventions``), so a number never travels without what was computed. Metric names are
those of ``ntkexp.metrics.METRICS`` (``ntkexp.metrics.METRICS.names()``); a combination (``tegnas``, ``ntk_score``)
ranks archs against each other and so needs a set of networks, not one: score its components.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ntkexp.metrics import (COMBINATIONS, METRICS, InputRequest, MetricContext, compute_metrics, metric_settings,
                            prepare_inputs)
from ntkexp.ntk import NTKConfig
from ntkexp.ntk import empirical_ntk as _empirical_ntk
from ntkexp.registry import load_plugins


@dataclass
class Scores:
    """The metrics of one network: ``values`` (NaN where undefined), the ``flags`` each metric raised (e.g.
    ``singular``, ``nonfinite:lga``) and the ``conventions`` they were computed under."""

    values: dict[str, float]
    flags: dict[str, list[str]] = field(default_factory=dict)
    conventions: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.values[name]


def _config(bn_mode: str, reduction: str, params: str, dtype: str, chunk_size: int | None, batch: int) -> NTKConfig:
    return NTKConfig(reduction=reduction, params=params, bn_mode=bn_mode, dtype=dtype, chunk_size=chunk_size,
                     batch_size=batch)


def _check_images(model: nn.Module, images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """``images`` checked against ``model``: a finite batch of at least 2, of the model's dtype, on its device."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    first = next(model.parameters(), None)
    if first is None:
        raise ValueError("model has no parameters: an NTK differentiates the output with respect to them")
    if not isinstance(images, torch.Tensor) or images.ndim < 2 or images.shape[0] < 2:
        raise ValueError(f"{name} must be a tensor batch of at least 2 inputs (batch first), got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    if not images.is_floating_point():
        raise ValueError(f"{name} are {images.dtype}; give float images, scaled and normalised as the model expects")
    if images.dtype != first.dtype:
        raise ValueError(f"{name} are {images.dtype} but the model's parameters are {first.dtype}; convert one "
                         f"(e.g. {name}.to({first.dtype}))")
    if images.device != first.device:
        raise ValueError(f"{name} are on {images.device} but the model is on {first.device}; move one to the other")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} hold NaN or infinite values")
    return images


def _check_labels(labels: Any, n: int, num_classes: int, name: str = "labels") -> torch.Tensor:
    """Integer class labels in 0..num_classes-1, one per image."""
    y = torch.as_tensor(labels).reshape(-1)
    if y.is_floating_point():
        if not torch.isfinite(y).all() or not torch.equal(y, y.round()):
            raise ValueError(f"{name} must be whole class numbers, got e.g. {y[~(y == y.round())][:1].tolist()}")
        y = y.long()
    elif y.dtype == torch.bool or not (y.dtype.is_signed or y.dtype == torch.uint8):
        raise ValueError(f"{name} must be integer class numbers, got {y.dtype}")
    if len(y) != n:
        raise ValueError(f"{n} images but {len(y)} {name}")
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        raise ValueError(f"{name} must be classes 0..{num_classes - 1} (the model's {num_classes} outputs), got "
                         f"{int(y[bad][0])}")
    return y.long()


def empirical_ntk(model: nn.Module, images: torch.Tensor, *, bn_mode: str = "per_sample", reduction: str = "sum",
                  params: str = "all", dtype: str = "float32", chunk_size: int | None = None) -> torch.Tensor:
    """The empirical NTK Theta = J J^T of ``model`` on the batch ``images`` (B x B, float64, on the CPU).

    ``bn_mode``: ``per_sample`` (each sample normalised by its own statistics; Mok et al.'s "train mode"), ``train``
    (the exact kernel of batch statistics, which couple the samples) or ``eval`` (running statistics);
    ``reduction``: the output differentiated (``sum`` of logits as TE-NAS, ``trace`` of the full kernel over logits,
    ``logit`` one logit); ``params``: ``all``, ``weights`` or ``conv_linear``; ``dtype``: float32 or float64.
    The model's parameters, buffers and mode are left as they were."""
    x = _check_images(model, images)
    return _empirical_ntk(model, x, _config(bn_mode, reduction, params, dtype, chunk_size, len(x))).kernel


def score(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, metrics: Sequence[str] = ("lga", "ncn"), *,
          num_classes: int | None = None, bn_mode: str = "per_sample", reduction: str = "sum", params: str = "all",
          dtype: str = "float32", chunk_size: int | None = None,
          held_out: tuple[torch.Tensor, torch.Tensor] | None = None, seed: int = 0,
          settings: Mapping[str, Any] | None = None) -> Scores:
    """Each metric of ``metrics`` for ``model`` on the probe batch (``images``, ``labels``), the NTK shared by those
    that use it. ``held_out`` is a second labelled batch for the kernel-regression metrics (``ntk_mse``, ``s_e``,
    ``s_g``); ``num_classes`` defaults to the model's output width. ``settings`` maps a metric with settings of its
    own (``gradsign``, ``linear_regions``, ...) to them (its settings dataclass, or a dict of its fields). A metric
    with inputs of its own prepares them for ``model`` itself (``linear_regions`` under TE-NAS's protocol: crops of
    ``images``, so the model must take inputs of the crop's size; ``protocol="probe"`` counts on ``images``). The
    model's weights are not changed."""
    load_plugins()  # metrics that installed packages register through the ntkexp.plugins entry points
    names = list(dict.fromkeys(metrics))
    combos = [n for n in names if n in COMBINATIONS]
    if combos:
        raise ValueError(f"{combos[0]} ranks a set of archs against each other; score its components "
                         f"{list(COMBINATIONS.get(combos[0]).components)} for each network and combine them")
    for name in names:
        METRICS.get(name)  # an unknown name is refused, listing the known ones
    x = _check_images(model, images)
    width = _width(model, x)  # also refuses a model that does not return one logits tensor
    num_classes = width if num_classes is None else num_classes
    y = _check_labels(labels, len(x), num_classes)
    x_test = y_test = None
    if held_out is not None:
        if not isinstance(held_out, (tuple, list)) or len(held_out) != 2:
            raise ValueError("held_out must be a pair (images, labels)")
        x_test = _check_images(model, held_out[0], "held_out images")
        y_test = _check_labels(held_out[1], len(x_test), num_classes, "held_out labels")
    cfg = _config(bn_mode, reduction, params, dtype, chunk_size, len(x))
    own = metric_settings(settings, names)  # the metrics' own settings (their defaults where not given)
    device = x.device

    def request(name: str) -> InputRequest:  # no space or arch here: a hook prepares its inputs for the model itself
        return InputRequest(arch="", space=None, model=model, num_classes=num_classes, in_channels=x.shape[1],
                            train_images=lambda: x, init=None, seed=seed, repeat=0, init_seed=seed, device=device,
                            settings=own.get(name))

    ctx = MetricContext(model, x, y, num_classes, cfg, x_test=x_test, y_test=y_test, seed=seed, settings=dict(own),
                        inputs=prepare_inputs(names, request))
    values = compute_metrics(names, ctx)
    conventions = {"ntk": {k: v for k, v in asdict(cfg).items() if k != "logit_index" or reduction == "logit"},
                   "batch": len(x), "held_out": None if x_test is None else len(x_test), "seed": seed,
                   "num_classes": num_classes, "device": str(x.device),
                   "parameters": sum(p.numel() for p in model.parameters()),
                   "torch": torch.__version__, "python": platform.python_version()}
    if own:
        conventions["metric_settings"] = {name: asdict(value) for name, value in own.items()}
    return Scores(values, {n: sorted(ctx.metric_flags.get(n, set())) for n in names}, conventions)


def _width(model: nn.Module, x: torch.Tensor) -> int:
    """The model's output width, from an eval-mode forward pass (no BN statistics touched), its mode restored."""
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            out = model(x[:2])
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            raise ValueError(f"model must return one logits tensor of shape (batch, classes), got "
                             f"{type(out).__name__ if not isinstance(out, torch.Tensor) else tuple(out.shape)}; wrap "
                             "it so that forward returns the logits")
        return int(out.shape[-1])
    finally:
        model.train(was)
