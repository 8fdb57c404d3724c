"""The metric registry, the per-arch context metrics read from, and the policy for degenerate architectures.

A metric is a function ``(ctx: MetricContext) -> float`` registered with :func:`register_metric`, declaring its
``direction`` (+1: larger predicts higher accuracy, -1: smaller does). Metrics that share the NTK read it from
``ctx.ntk()``, which is computed once per arch however many metrics ask for it.

Degenerate architectures (policy, applied by :func:`finalize` and by the correlation code):

* a metric value that is NaN or +-inf is kept as NaN and flagged ``nonfinite:<metric>``;
* an all-zero kernel (no gradient reaches any selected parameter, e.g. an all-``none`` cell) is flagged
  ``zero_kernel``; metrics on it that are undefined become NaN;
* a numerically singular or indefinite kernel (lambda_min <= ``SINGULAR_RTOL`` * lambda_max) is flagged
  ``singular``; its condition number is +inf (NCN -inf);
* an exception while building, initialising or scoring one arch is flagged ``error:<Type>`` with all its metrics
  NaN, and the run goes on.

For rank correlation and search every flagged-as-undefined score counts as the worst score (ties among themselves),
never as a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn

from ntkexp.ntk import NTKConfig, NTKResult, empirical_ntk
from ntkexp.registry import Registry, decorator

SINGULAR_RTOL = 1e-12


class MetricFn(Protocol):
    direction: int
    needs: tuple[str, ...]

    def __call__(self, ctx: "MetricContext") -> float: ...


METRICS: Registry[MetricFn] = Registry("metric")


def register_metric(name: str, direction: int, needs: tuple[str, ...] = ("ntk",)) -> Callable[[Any], Any]:
    """Register ``fn(ctx) -> float`` as metric ``name``; ``needs`` names the shared computations it uses."""
    if direction not in (1, -1):
        raise ValueError("direction must be +1 or -1")
    return decorator(METRICS, name, direction=direction, needs=needs, metric_name=name)


@dataclass
class MetricContext:
    """Everything a metric may need about one initialised (or trained) network and the probe batch.

    Shared computations are cached here, so metrics that share them cost one pass: the NTK of the probe batch
    (``ntk``, ``eigenvalues``), joint train/held-out kernels (``joint_kernel``), ReLU activation patterns
    (``activation_codes``) and the batch-loss gradients (``loss_gradients``). ``x_test``/``y_test`` is a held-out
    batch (from the test split) for the kernel-regression metrics.
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    ntk_cfg: NTKConfig = field(default_factory=NTKConfig)
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    seed: int = 0
    flags: set[str] = field(default_factory=set)
    _ntk: NTKResult | None = None
    _eig: torch.Tensor | None = None
    _cache: dict[Any, Any] = field(default_factory=dict)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.x_test is None or self.y_test is None:
            raise ValueError("this metric needs a held-out batch (x_test, y_test), but none was given")
        return self.x_test, self.y_test

    def ntk(self) -> NTKResult:
        if self._ntk is None:
            self._ntk = empirical_ntk(self.model, self.x, self.ntk_cfg)
            if not torch.isfinite(self._ntk.kernel).all():
                self.flags.add("nonfinite_kernel")
            elif not self._ntk.kernel.any():
                self.flags.add("zero_kernel")
        return self._ntk

    def eigenvalues(self) -> torch.Tensor:
        """Ascending eigenvalues of the (symmetrised) kernel, float64."""
        if self._eig is None:
            k = self.ntk().kernel
            if not torch.isfinite(k).all():
                self._eig = torch.full((k.shape[0],), float("nan"), dtype=torch.float64)
            else:
                self._eig = torch.linalg.eigvalsh(0.5 * (k + k.T))
        return self._eig


def compute_metrics(names: list[str], ctx: MetricContext) -> dict[str, float]:
    """Every metric in ``names`` for one context; shared work (the NTK) is done once."""
    values: dict[str, float] = {}
    for name in names:
        fn = METRICS.get(name)
        value = float(fn(ctx))
        if not np.isfinite(value):
            ctx.flags.add(f"nonfinite:{name}")
            value = float("nan") if np.isnan(value) or name not in ("ncn", "cond") else value
        values[name] = value
    return values


def oriented_for_ranking(values: np.ndarray, direction: int) -> np.ndarray:
    """direction * value, with NaN (undefined) mapped to -inf so it ranks worst; +-inf keep their meaning."""
    out = direction * np.asarray(values, dtype=np.float64)
    return np.where(np.isnan(out), -np.inf, out)
